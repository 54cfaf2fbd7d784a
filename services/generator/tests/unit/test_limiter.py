"""The fair global limiter: capacity, fairness between jobs, cancellation safety."""

from __future__ import annotations

import asyncio

from llmts_generator.domain.limiter import FairLimiter


async def test_capacity_is_never_exceeded() -> None:
    lim = FairLimiter(3)
    peak = 0

    async def work(key: str) -> None:
        nonlocal peak
        async with lim.slot(key):
            peak = max(peak, lim.in_use)
            await asyncio.sleep(0.001)

    await asyncio.gather(*(work(f"j{i % 4}") for i in range(40)))
    assert peak == 3
    assert lim.in_use == 0
    assert lim.waiting() == 0


async def test_a_greedy_job_does_not_starve_a_small_one() -> None:
    """Job A floods 100 waiters first; job B's 5 calls are granted as soon as permits free, not after A's."""
    lim = FairLimiter(4)
    order: list[str] = []
    gate = asyncio.Event()

    async def call(key: str) -> None:
        async with lim.slot(key):
            order.append(key)
            await gate.wait()
            await asyncio.sleep(0)

    a = [asyncio.create_task(call("A")) for _ in range(100)]
    await asyncio.sleep(0)
    b = [asyncio.create_task(call("B")) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*a, *b)
    # B's 5 grants all happen within the first 4 (initial A) + ~10 grants
    last_b = max(i for i, k in enumerate(order) if k == "B")
    assert last_b < 16, order[:20]


async def test_cancelled_waiter_leaves_no_trace() -> None:
    lim = FairLimiter(1)
    await lim.acquire("A")
    waiter = asyncio.create_task(lim.acquire("B"))
    await asyncio.sleep(0)
    assert lim.waiting("B") == 1
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert lim.waiting() == 0
    lim.release("A")
    assert lim.in_use == 0
    await lim.acquire("C")  # the permit is really free
    assert lim.held["C"] == 1


async def test_least_held_first() -> None:
    lim = FairLimiter(2)
    await lim.acquire("A")
    await lim.acquire("A")
    wa = asyncio.create_task(lim.acquire("A"))
    await asyncio.sleep(0)
    wb = asyncio.create_task(lim.acquire("B"))
    await asyncio.sleep(0)
    lim.release("A")  # A holds 1, B holds 0 → B goes first although A waited longer
    await asyncio.sleep(0)
    assert wb.done()
    assert not wa.done()
    lim.release("A")
    await asyncio.sleep(0)
    assert wa.done()
