"""The process-wide load guard: a cap on provider calls in flight while the event loop lags, heeded by every
provider's fair limiter."""

from __future__ import annotations

import asyncio
import math

import pytest

from llmts_generator.domain.concurrency import AdaptiveConfig, AdaptiveLimit
from llmts_generator.domain.limiter import FairLimiter
from llmts_generator.domain.loadguard import GuardConfig, LoadGuard

CFG = GuardConfig(target_s=0.01, floor=4, ceiling=64, backoff=0.5, step=2)


def busy(guard: LoadGuard, n: int) -> None:
    for _ in range(n):
        guard.started()


def test_no_cap_until_the_loop_lags() -> None:
    guard = LoadGuard(CFG)
    busy(guard, 40)
    assert not guard.update(0.002)
    assert math.isinf(guard.cap)
    assert guard.allows()
    assert guard.snapshot() == {"cap": None, "in_flight": 40, "loop_lag_ms": 2.0}


def test_lag_cuts_the_cap_below_the_calls_in_flight_but_never_below_the_floor() -> None:
    guard = LoadGuard(CFG)
    busy(guard, 40)
    guard.update(0.030)
    assert guard.cap == 20
    assert not guard.allows()
    guard.update(0.030)  # still lagging: from min(cap, in flight)
    assert guard.cap == 10
    for _ in range(3):
        guard.update(0.030)
    assert guard.cap == CFG.floor
    assert guard.decreases == 5


def test_a_lag_with_few_calls_in_flight_is_not_theirs() -> None:
    guard = LoadGuard(CFG)
    busy(guard, CFG.floor - 1)
    guard.update(0.5)
    assert math.isinf(guard.cap)
    assert guard.decreases == 0


def test_the_cap_grows_back_only_while_it_binds_and_the_loop_is_well_below_target() -> None:
    guard = LoadGuard(CFG)
    busy(guard, 20)
    guard.update(0.030)
    assert guard.cap == 10
    for _ in range(10):  # 20 in flight (granted before the cut) still end one by one
        guard.ended()
    assert guard.in_flight == 10
    assert not guard.update(0.008)  # below target but not below half of it: holds
    assert guard.cap == 10
    assert guard.update(0.002)
    assert guard.cap == 12
    for _ in range(5):
        guard.ended()
    assert not guard.update(0.001)  # 5 in flight under a cap of 12: the cap does not bind, no growth
    assert guard.cap == 12


def test_past_the_ceiling_there_is_no_cap_again() -> None:
    guard = LoadGuard(GuardConfig(target_s=0.01, floor=4, ceiling=10, backoff=0.5, step=2))
    busy(guard, 16)
    guard.update(0.05)
    assert guard.cap == 8
    for _ in range(9):
        guard.ended()
    busy(guard, 1)  # 8 in flight: the cap binds
    assert guard.update(0.0)
    assert guard.cap == 10
    busy(guard, 2)  # 10 in flight
    assert guard.update(0.0)
    assert math.isinf(guard.cap)


@pytest.mark.parametrize(
    "kwargs",
    [{"target_s": 0}, {"floor": 0}, {"floor": 8, "ceiling": 4}, {"backoff": 1.0}, {"step": 0}],
)
def test_config_is_checked(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"target_s|step"):
        GuardConfig(**kwargs)  # type: ignore[arg-type]


async def test_limiters_of_every_provider_heed_the_cap_and_wake_when_it_frees() -> None:
    guard = LoadGuard(CFG)
    a, b = FairLimiter(8, name="a", guard=guard), FairLimiter(8, name="b", guard=guard)
    gate = asyncio.Event()
    peak = 0

    async def call(lim: FairLimiter, key: str) -> None:
        nonlocal peak
        async with lim.slot(key):
            peak = max(peak, guard.in_flight)
            await gate.wait()

    first = [asyncio.create_task(call(a, f"j{i}")) for i in range(6)]
    await asyncio.sleep(0)
    guard.update(0.05)  # 6 in flight, lagging: cap 4 (the floor)
    assert guard.cap == 4
    later = [asyncio.create_task(call(b, "k")) for _ in range(3)]
    await asyncio.sleep(0.01)
    assert b.in_use == 0
    assert b.waiting() == 3
    gate.set()
    await asyncio.gather(*first, *later)
    assert b.in_use == 0
    assert b.waiting() == 0
    assert guard.in_flight == 0
    assert peak == 6  # never more than were in flight before the cut


async def test_waiters_held_by_the_cap_do_not_spin_the_loop() -> None:
    """An adaptive limiter arms a timer for a Retry-After pause; calls held by the guard must not re-arm a zero
    timer over and over (a busy loop that took the CPU it was meant to save)."""
    guard = LoadGuard(CFG)
    lim = FairLimiter(
        8, name="a", guard=guard, controller=AdaptiveLimit(AdaptiveConfig(ceiling=8, initial=8))
    )
    gate = asyncio.Event()

    async def call(key: str) -> None:
        async with lim.slot(key):
            await gate.wait()

    held = [asyncio.create_task(call(f"j{i}")) for i in range(5)]
    await asyncio.sleep(0)
    guard.update(0.05)  # cap 4 with 5 in flight
    waiter = asyncio.create_task(call("late"))
    pokes = 0
    original = lim.poke

    def counting_poke() -> None:
        nonlocal pokes
        pokes += 1
        original()

    lim.poke = counting_poke  # type: ignore[method-assign]
    await asyncio.sleep(0.05)
    assert lim.waiting() == 1
    assert pokes == 0
    gate.set()
    await asyncio.gather(*held, waiter)
    assert guard.in_flight == 0


async def test_while_the_cap_binds_freed_calls_alternate_between_providers() -> None:
    """User A's backlog waits on provider a, user B's calls on provider b: with the cap binding, every freed call
    must not go back to a's queue first (B would wait behind all of A's calls)."""
    guard = LoadGuard(CFG)
    a, b = FairLimiter(16, name="a", guard=guard), FairLimiter(16, name="b", guard=guard)
    order: list[str] = []
    gates: dict[str, asyncio.Event] = {}

    async def call(lim: FairLimiter, user: str, n: int) -> None:
        async with lim.slot(f"{user}{n}", user=user):
            order.append(user)
            gate = gates[f"{user}{n}"] = asyncio.Event()
            await gate.wait()

    first = [asyncio.create_task(call(a, "A", i)) for i in range(8)]
    await asyncio.sleep(0)
    guard.update(0.05)  # 8 in flight: cap 4
    assert guard.cap == 4
    backlog = [asyncio.create_task(call(a, "A", i)) for i in range(8, 40)]
    small = [asyncio.create_task(call(b, "B", i)) for i in range(4)]
    await asyncio.sleep(0)
    order.clear()
    for i in range(8):  # the first 8 end one by one (4 of them above the cap: no grant until below it)
        gates[f"A{i}"].set()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    granted = list(order)
    assert granted.count("B") >= 2  # B got its turns among the first grants, not after A's 32 waiting calls
    assert granted[:4].count("B") >= 1
    for task in backlog + small:
        task.cancel()
    for i in range(8):
        gates.pop(f"A{i}", None)
    for gate in gates.values():
        gate.set()
    await asyncio.gather(*first, *backlog, *small, return_exceptions=True)
    assert guard.in_flight == 0


def test_the_job_view_shows_the_process_cap_while_it_binds() -> None:
    guard = LoadGuard(CFG)
    lim = FairLimiter(16, name="a", guard=guard)
    assert lim.snapshot()["process_cap"] is None
    busy(guard, 10)
    guard.update(0.05)
    assert lim.snapshot()["process_cap"] == 5
