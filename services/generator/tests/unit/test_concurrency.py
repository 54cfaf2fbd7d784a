"""The adaptive concurrency controller (pure, times passed in) and the fair limiter driven by it (injected clock):
slow start, AIMD, one decrease per epoch, the remembered level and its probes, Retry-After pauses, the
time-to-first-token queueing signal, and how provider errors map onto overload signals."""

from __future__ import annotations

import asyncio

import pytest

from llmts_generator.domain.concurrency import MAX_PROBE_ROUNDS, AdaptiveConfig, AdaptiveLimit, CallStart
from llmts_generator.domain.limiter import FairLimiter, overload_signal
from llmts_providers.errors import (
    BadRequest,
    MidStreamError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)


def ctl(**kw: float) -> AdaptiveLimit:
    base: dict[str, float] = {"ceiling": 64, "initial": 8}
    return AdaptiveLimit(AdaptiveConfig(**{**base, **kw}))  # type: ignore[arg-type]


def full(c: AdaptiveLimit) -> CallStart:
    """A call granted with the whole limit in use."""
    return c.start(c.current)


def round_trip(c: AdaptiveLimit) -> None:
    """One round trip at the limit, more calls waiting: every call in flight succeeds."""
    for _ in range(c.current):
        c.success(full(c), binding=True)


# --- the controller ---------------------------------------------------------------------------------------
def test_starts_at_initial_within_ceiling_and_floor() -> None:
    assert ctl(initial=8).current == 8
    assert ctl(initial=100, ceiling=4).current == 4
    assert ctl(initial=0).current == 1
    with pytest.raises(ValueError, match="backoff"):
        AdaptiveConfig(ceiling=4, backoff=1.0)


def test_slow_start_doubles_per_round_trip_until_the_ceiling() -> None:
    c = ctl(initial=4, ceiling=20)
    round_trip(c)
    assert c.current == 8
    round_trip(c)
    assert c.current == 16
    round_trip(c)
    assert c.current == 20  # never above the ceiling
    assert not c.slow_start


def test_only_successes_while_the_limit_binds_make_it_grow() -> None:
    c = ctl(initial=8)
    for _ in range(50):
        c.success(c.start(2), binding=False)  # a job sending two at a time proves nothing about eight
    assert c.current == 8


def test_overload_decreases_once_per_epoch() -> None:
    c = ctl(initial=16, backoff=0.75)
    burst = [c.start(level) for level in range(9, 17)]  # 8 calls granted above a hidden capacity of 8
    assert c.overload(burst[0])
    assert c.current == 6  # 0.75 × min(16, 9) = 6.75: the level that failed, not the limit, sets the decrease
    assert not any(c.overload(call) for call in burst[1:])  # the same burst: no further decrease
    assert c.decreases == 1
    assert c.known_bad == 10  # the second-lowest refused level once several came back
    assert c.current == 7  # 0.75 × 10
    assert not c.slow_start


def test_late_answers_of_a_burst_re_decide_the_level() -> None:
    """The first calls of a process can reach the server out of order: the call granted 2nd was refused (its
    connection came late) while the 3rd to 8th were served. One such refusal does not decide alone."""
    c = ctl(initial=16, backoff=0.9)
    outlier, *burst = [c.start(level) for level in (2, 12, 9, 16)]
    assert c.overload(outlier)
    assert c.current == 1  # alone, it decides: 0.9 × 2
    c.overload(burst[0])
    assert c.known_bad == 12  # second-lowest of {2, 12}
    c.overload(burst[1])
    assert c.known_bad == 9  # second-lowest of {2, 9, 12}
    assert c.current == 8  # 0.9 × 9
    c.overload(burst[2])
    assert c.known_bad == 9
    assert c.decreases == 1
    c.overload(c.start(9))  # the next epoch: a new burst of its own
    assert c.decreases == 2


def test_after_a_decrease_growth_is_one_call_per_round_trip() -> None:
    c = ctl(initial=40, backoff=0.5)
    c.overload(c.start(40))  # → 20, level 40 remembered
    for _ in range(10):
        before = c.limit
        round_trip(c)
        assert 0.9 < c.limit - before <= 1.0  # + 1/limit per success (TCP's congestion avoidance)
    assert c.current == 29


def test_a_report_from_before_the_decrease_moves_nothing() -> None:
    c = ctl(initial=16)
    old = full(c)
    c.overload(c.start(16))
    limit = c.limit
    c.success(old, binding=True)
    assert c.limit == limit


def rounds_until_probe(c: AdaptiveLimit, level: int) -> int:
    rounds = 0
    while c.current < level:
        round_trip(c)
        rounds += 1
    return rounds


def test_growth_stops_below_the_level_that_overloaded_then_probes_it() -> None:
    c = ctl(initial=16, backoff=0.9, probe_rounds=4)
    c.overload(c.start(9))  # hidden capacity 8: the 9th call got a 429 → 0.9 × 9 = 8.1
    assert c.current == 8
    assert c.known_bad == 9
    # one round trip grows 8.1 → 8.9, then 4 round trips (32 successes) held just below 9, then one probe
    assert rounds_until_probe(c, 9) == 5
    assert c.current == 9
    assert c.probing


def test_a_probe_that_fails_again_waits_twice_as_long_up_to_a_cap() -> None:
    c = ctl(initial=16, backoff=0.9, probe_rounds=4)
    c.overload(c.start(9))
    gaps = []
    for _ in range(6):
        gaps.append(c.probe_gap)
        rounds_until_probe(c, 9)
        c.overload(c.start(9))  # the probe fails again at 9
    assert gaps == [4, 8, 16, 32, 64, 64]
    assert c.probe_gap == MAX_PROBE_ROUNDS


def test_a_probe_that_holds_forgets_the_level() -> None:
    c = ctl(initial=16, backoff=0.9, probe_rounds=2)
    c.overload(c.start(9))
    while not c.probing:
        round_trip(c)
    round_trip(c)  # a whole round trip at 9 without an overload: capacity grew
    assert c.known_bad is None
    round_trip(c)
    assert c.current == 10


def test_retry_after_pauses_new_calls_even_for_an_old_report() -> None:
    c = ctl(max_pause_s=30)
    old = full(c)
    c.overload(full(c), now=100.0)
    c.overload(old, retry_after_s=5.0, now=100.0)
    assert c.paused(104.9)
    assert not c.paused(105.0)
    c.overload(full(c), retry_after_s=3600.0, now=200.0)  # a daily cap: paused at most max_pause_s
    assert c.paused_until == 230.0


def test_time_to_first_token_above_the_baseline_is_queueing() -> None:
    c = ctl(initial=4, ceiling=4, queue_ratio=2.0, queue_slack_s=0.5)
    assert not c.first_token(c.start(1), 0.2)  # the first TTFT is the baseline
    assert c.queue_threshold() == pytest.approx(0.9)
    assert not c.first_token(c.start(1), 0.8)  # below 2 × 0.2 + 0.5
    assert c.first_token(c.start(2), 4.0)  # waited for a whole answer in the server's queue
    assert c.current == 1  # 0.9 × min(4, 2)
    assert c.known_bad == 2


def test_a_call_waiting_for_its_first_token_holds_growth() -> None:
    c = ctl(initial=2)
    c.success(full(c), binding=True, queue_building=True)
    assert c.current == 2
    c.success(full(c), binding=True)
    assert c.current == 3


def test_against_a_hidden_capacity_it_settles_there_with_few_overloads() -> None:
    """Round by round: the calls above the hidden capacity get a 429 (the first one reported decreases), the
    others succeed. Over 250 round trips the limit sits at the capacity and overloads are rare."""
    capacity = 8
    c = ctl(initial=16, backoff=0.9, probe_rounds=4)
    overloads = served = 0
    at_capacity = 0
    for _ in range(250):
        n = c.current
        calls = [c.start(level) for level in range(1, n + 1)]
        for call in calls:
            if call.level > capacity:
                overloads += 1
                c.overload(call)
        for call in calls:
            if call.level <= capacity:
                served += 1
                c.success(call, binding=True)
        at_capacity += c.current == capacity
    print(f"served={served} overloads={overloads} rounds at capacity={at_capacity}/250")
    assert overloads <= 16
    assert overloads / (served + overloads) < 0.01
    assert at_capacity >= 225


# --- errors → signals -------------------------------------------------------------------------------------
def test_which_provider_errors_are_overload_signals() -> None:
    assert overload_signal(RateLimited("429", "p", status_code=429, retry_after=2.0)) == (True, 2.0)
    assert overload_signal(RateLimited("429", "p", status_code=429)) == (True, None)
    assert overload_signal(ProviderTimeout("first-token timeout", "p")) == (True, None)
    assert overload_signal(ProviderUnavailable("busy", "p", status_code=503, retry_after=1.0)) == (True, 1.0)
    assert overload_signal(ProviderUnavailable("overloaded", "p", status_code=529)) == (True, None)
    assert overload_signal(ProviderUnavailable("refused", "p")) == (False, None)  # gone, not overloaded
    assert overload_signal(ProviderUnavailable("bad gateway", "p", status_code=502)) == (False, None)
    assert overload_signal(BadRequest("400", "p", status_code=400)) == (False, None)
    assert overload_signal(MidStreamError("oops", "p")) == (False, None)


# --- the limiter driven by the controller (injected clock) ------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def adaptive(clock: Clock, **kw: float) -> FairLimiter:
    c = ctl(**kw)
    return FairLimiter(int(c.config.ceiling), name="fake", controller=c, clock=clock)


async def test_a_429_in_a_slot_lowers_the_capacity() -> None:
    lim = adaptive(Clock(), initial=8, backoff=0.5)
    for _ in range(7):
        await lim.acquire("other")
    with pytest.raises(RateLimited):
        async with lim.slot("job"):  # the 8th call at once gets a 429
            raise RateLimited("429", "fake", status_code=429)
    assert lim.capacity == 4  # 0.5 × 8
    assert lim.snapshot() == {
        "current": 4,
        "ceiling": 64,
        "in_flight": 7,
        "adaptive": True,
        "process_cap": None,
    }
    for _ in range(7):
        lim.release("other")
    assert lim.in_use == 0


async def test_errors_that_are_not_overload_change_nothing() -> None:
    lim = adaptive(Clock(), initial=8)
    for error in (
        BadRequest("400", "f", status_code=400),
        MidStreamError("x", "f"),
        ProviderUnavailable("r", "f"),
    ):
        with pytest.raises(type(error)):
            async with lim.slot("job"):
                raise error
    async with lim.slot("job"):
        pass  # ended without reporting an answer: neutral
    assert lim.capacity == 8


async def test_successes_while_the_limit_binds_grow_it() -> None:
    lim = adaptive(Clock(), initial=2)
    async with lim.slot("a") as p1, lim.slot("b") as p2:
        p1.succeeded()
        p2.succeeded()
    assert lim.capacity == 3  # slow start: +1 for the first to end (all permits in use), not the second
    async with lim.slot("a") as p:
        p.succeeded()
    assert lim.capacity == 3  # one call at a time with three allowed: the limit does not bind


async def test_retry_after_holds_every_new_grant_until_it_ends() -> None:
    clock = Clock()
    lim = adaptive(clock, initial=8)
    with pytest.raises(RateLimited):
        async with lim.slot("job"):
            raise RateLimited("429", "fake", status_code=429, retry_after=5.0)
    waiter = asyncio.create_task(lim.acquire("other"))
    await asyncio.sleep(0)
    assert not waiter.done()  # room, but paused
    assert lim.waiting() == 1
    clock.now += 5.0
    lim.poke()  # what the pause timer does when it ends
    await asyncio.sleep(0)
    assert waiter.done()
    lim.release("other")
    assert lim.in_use == 0


async def test_waiters_are_woken_when_the_pause_ends_between_the_check_and_the_timer() -> None:
    # the pause is still on when _room looks, over when the timer is armed (or the loop fires the timer a hair
    # early): no call in flight to release a permit, so only the timer can grant the waiter
    clock = Clock()
    lim = adaptive(clock, initial=8)
    with pytest.raises(RateLimited):
        async with lim.slot("job"):
            raise RateLimited("429", "fake", status_code=429, retry_after=5.0)
    ctl = lim.controller
    assert ctl is not None
    reads = iter([clock.now + 4.999999, clock.now + 5.000001])  # _room, then _arm_timer
    lim.clock = lambda: next(reads, clock.now + 5.000001)
    waiter = asyncio.create_task(lim.acquire("other"))
    await asyncio.sleep(0)
    assert not waiter.done()
    await asyncio.wait_for(waiter, timeout=1.0)  # the timer (armed at 0 s) grants it
    lim.release("other")
    assert lim.in_use == 0


async def test_a_queued_first_token_lowers_the_limit_before_the_call_ends() -> None:
    clock = Clock()
    lim = adaptive(clock, initial=2, ceiling=4, queue_ratio=2.0, queue_slack_s=0.5)
    async with lim.slot("job", streamed=True) as served, lim.slot("job", streamed=True) as queued:
        clock.now += 0.2
        served.first_token()
        clock.now += 4.0  # the second waits for the first answer in the server's queue
        queued.first_token()
        assert lim.capacity == 1  # reacted at the first token, not at the end of the call
        served.succeeded()
        queued.succeeded()
    assert lim.capacity == 1  # their ends report on the old limit


async def test_the_result_ttft_stands_in_for_a_first_token_not_reported_live() -> None:
    clock = Clock()
    lim = adaptive(clock, initial=2, ceiling=4)
    async with lim.slot("job", streamed=True) as p:
        p.succeeded(first_token_ms=200.0)
    async with lim.slot("job", streamed=True) as a, lim.slot("job", streamed=True) as b:
        a.succeeded(first_token_ms=200.0)
        b.succeeded(first_token_ms=5000.0)
    assert lim.capacity == 1


async def test_a_call_overdue_for_its_first_token_stops_growth() -> None:
    clock = Clock()
    lim = adaptive(clock, initial=2, ceiling=8)
    async with lim.slot("job", streamed=True) as p:
        p.first_token()
        p.succeeded()  # baseline TTFT 0 s → queue threshold 0.5 s
    async with lim.slot("job", streamed=True) as waiting:
        clock.now += 2.0  # no first token after 2 s: it is queued at the server
        async with lim.slot("job", streamed=True) as done:
            done.first_token()
            done.succeeded()  # the limit binds (2 of 2 in use), but a call is overdue
        assert lim.capacity == 2
        waiting.first_token()  # 2 s: queueing → decrease
    assert lim.capacity == 1


async def test_fairness_between_jobs_holds_with_an_adaptive_capacity() -> None:
    lim = adaptive(Clock(), initial=4, ceiling=4)
    order: list[str] = []
    gate = asyncio.Event()

    async def call(key: str) -> None:
        async with lim.slot(key) as permit:
            order.append(key)
            await gate.wait()
            await asyncio.sleep(0)
            permit.succeeded()

    a = [asyncio.create_task(call("A")) for _ in range(100)]
    await asyncio.sleep(0)
    b = [asyncio.create_task(call("B")) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*a, *b)
    last_b = max(i for i, k in enumerate(order) if k == "B")
    assert last_b < 16, order[:20]
    assert lim.in_use == 0
