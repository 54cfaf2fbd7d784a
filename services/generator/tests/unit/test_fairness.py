"""Fair sharing between users: provider call permits (FairQueue, FairLimiter) and job admission."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random

import pytest

from llmts_generator.domain.concurrency import AdaptiveConfig, AdaptiveLimit
from llmts_generator.domain.fairness import Candidate, FairQueue, admit, pick_admissions
from llmts_generator.domain.limiter import FairLimiter
from llmts_providers.errors import RateLimited


def _busy_queue(capacity: int, jobs: int, backlog: int) -> tuple[FairQueue[int], list[tuple[str, str]]]:
    """User A holds all ``capacity`` permits over ``jobs`` jobs and has ``backlog`` calls waiting."""
    q: FairQueue[int] = FairQueue()
    held: list[tuple[str, str]] = []
    for i in range(capacity):
        job = f"a{i % jobs}"
        q.grant("A", job)
        held.append(("A", job))
    for i in range(backlog):
        q.push("A", f"a{i % jobs}", i)
    return q, held


def _serve(q: FairQueue[int], held: list[tuple[str, str]], grants: int) -> list[str]:
    """Free the oldest permit and grant the next waiter, ``grants`` times; the users served, in order."""
    served = []
    for _ in range(grants):
        q.release(*held.pop(0))
        picked = q.pop()
        assert picked is not None
        user, job, _item = picked
        held.append((user, job))
        served.append(user)
    return served


@pytest.mark.parametrize("backlog", [10, 1_000, 10_000])
@pytest.mark.parametrize("jobs", [1, 20])
def test_a_second_user_gets_its_fair_share_within_bounded_grants(backlog: int, jobs: int) -> None:
    """Whatever A's backlog (jobs, waiting calls), B's 10 calls take every grant until B holds half the capacity,
    then the two users alternate."""
    capacity = 16
    q, held = _busy_queue(capacity, jobs, backlog)
    for i in range(10):
        q.push("B", "b0", 100_000 + i)
    served = _serve(q, held, 8)
    assert served == ["B"] * 8  # B's first grant is the very next one; 8 = capacity / 2
    assert q.held(user="B") == q.held(user="A") == 8
    for _ in range(10):  # from then on a freed permit goes back to a user of the same share
        _serve(q, held, 1)
        assert q.held(user="B") == q.held(user="A") == 8


def test_within_a_user_jobs_share_equally() -> None:
    q, held = _busy_queue(capacity=8, jobs=1, backlog=100)  # job a0 holds 8, 100 waiting
    for i in range(10):
        q.push("A", "a1", 1_000 + i)
    jobs_served = []
    for _ in range(4):
        q.release(*held.pop(0))
        picked = q.pop()
        assert picked is not None
        held.append(picked[:2])
        jobs_served.append(picked[1])
    assert jobs_served == ["a1"] * 4
    assert q.held(job="a0") == q.held(job="a1") == 4


def test_a_new_user_waits_at_most_one_grant_per_competing_user() -> None:
    """Users C, D, E all start waiting while A holds everything; each is served before A again, in arrival order."""
    q, held = _busy_queue(capacity=6, jobs=3, backlog=500)
    for user in ("C", "D", "E"):
        for i in range(5):
            q.push(user, f"{user}-job", i)
    assert _serve(q, held, 3) == ["C", "D", "E"]


def test_a_user_alone_gets_every_permit() -> None:
    q: FairQueue[int] = FairQueue()
    for i in range(50):
        q.push("A", f"a{i % 5}", i)
    grants = [q.pop() for _ in range(50)]
    assert all(g is not None and g[0] == "A" for g in grants)
    assert q.held(user="A") == 50
    assert not q


def test_cancelled_waiters_and_released_permits_leave_nothing_behind() -> None:
    q: FairQueue[str] = FairQueue()
    q.push("A", "a0", "x")
    assert q.remove("A", "a0", "x")
    assert not q.remove("A", "a0", "x")
    q.grant("B", "b0")
    q.release("B", "b0")
    assert len(q) == 0
    assert q.held() == 0
    assert q.user_held == {}
    assert q.job_held == {}


async def test_limiter_grants_a_second_user_at_the_next_free_permit() -> None:
    """20 jobs of user A saturate the provider with 200 calls waiting; user B's call is granted at the next
    release, before every waiting call of A."""
    lim = FairLimiter(8)
    gate = asyncio.Event()
    order: list[str] = []

    async def call(user: str, job: str) -> None:
        async with lim.slot(job, user=user):
            order.append(user)
            await gate.wait()

    a_jobs = itertools.cycle([f"a{i}" for i in range(20)])
    a = [asyncio.create_task(call("A", next(a_jobs))) for _ in range(208)]
    await asyncio.sleep(0)
    assert lim.in_use == 8
    assert lim.waiting(user="A") == 200
    b = asyncio.create_task(call("B", "b0"))
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*a, b)
    assert order.index("B") == 8  # the first grant after A's 8 running calls
    assert lim.in_use == 0
    assert lim.held == {}


def test_admission_bounds_jobs_per_user() -> None:
    assert admit("B", {"A": 4}, max_jobs=32, per_user=4)
    assert not admit("A", {"A": 4}, max_jobs=32, per_user=4)
    assert not admit("B", {"A": 4, "C": 4}, max_jobs=8, per_user=4)


def test_queued_jobs_are_started_user_by_user() -> None:
    queue = [Candidate(f"a{i}", "A") for i in range(20)] + [Candidate("b0", "B"), Candidate("c0", "C")]
    picked = pick_admissions(queue, {"A": 2}, max_jobs=8, per_user=4)
    assert [c.job_id for c in picked] == ["b0", "c0", "a0", "a1"]  # A already runs 2: B and C go first
    picked = pick_admissions(queue, {}, max_jobs=32, per_user=4)
    assert [c.user_id for c in picked].count("A") == 4
    assert {c.job_id for c in picked} >= {"b0", "c0"}


def test_a_cancelled_job_is_always_admitted() -> None:
    queue = [Candidate("a9", "A", cancel_requested=True), Candidate("a10", "A")]
    picked = pick_admissions(queue, {"A": 4}, max_jobs=4, per_user=4)
    assert [c.job_id for c in picked] == ["a9"]


async def test_limiter_under_random_overloads_and_cancels_grants_every_call_and_leaks_nothing() -> None:
    """Three users, several jobs each, random 429s with a Retry-After (pauses), random cancels while waiting:
    every call that was not cancelled runs, the capacity is never exceeded, nothing is left held or waiting."""
    rng = random.Random(14)
    clock = [0.0]
    lim = FairLimiter(
        8, controller=AdaptiveLimit(AdaptiveConfig(ceiling=8, initial=4)), clock=lambda: clock[0]
    )
    ran: set[int] = set()
    peak = 0

    async def call(i: int) -> None:
        nonlocal peak
        user = f"u{i % 3}"
        with contextlib.suppress(RateLimited):
            async with lim.slot(f"{user}-j{i % 7}", user=user) as permit:
                peak = max(peak, lim.in_use)
                ran.add(i)
                await asyncio.sleep(0)
                if rng.random() < 0.1:
                    raise RateLimited("429", "fake", status_code=429, retry_after=0.5)
                permit.succeeded()

    tasks = [asyncio.create_task(call(i)) for i in range(600)]
    await asyncio.sleep(0)  # every call has asked for its permit: most wait
    assert lim.waiting() > 500
    for i in rng.sample(range(600), 60):
        tasks[i].cancel()
    while not all(t.done() for t in tasks):
        clock[0] += 0.1  # time passes: pauses end
        lim.poke()
        await asyncio.sleep(0)
    assert all(i in ran for i, t in enumerate(tasks) if not t.cancelled())
    assert len(ran) >= 540
    assert peak <= 8
    assert lim.in_use == 0
    assert lim.waiting() == 0
    assert lim.held == {}
