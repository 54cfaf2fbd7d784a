"""The event-loop lag monitor: how late a due timer runs, as a histogram and a short recent window."""

from __future__ import annotations

import asyncio
import time

import pytest

from llmts_common.looplag import LOOP_LAG, LoopLag


def test_recent_p90_is_high_only_while_the_loop_stays_busy() -> None:
    lag = LoopLag(window=10)
    assert lag.recent_p90() == 0.0
    for _ in range(9):
        lag.record(0.001)
    lag.record(0.5)  # one slow callback
    assert lag.recent_p90() == pytest.approx(0.001)
    for _ in range(5):
        lag.record(0.040)
    assert lag.recent_p90() == pytest.approx(0.040)
    lag.record(-0.001)  # a timer may fire a hair early: no negative lag
    assert min(lag._recent) == 0.0


def test_window_and_interval_are_checked() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        LoopLag(interval_s=0)
    with pytest.raises(ValueError, match="window"):
        LoopLag(window=0)


def _count() -> float:
    return next(s.value for m in LOOP_LAG.collect() for s in m.samples if s.name.endswith("_count"))


async def test_a_blocked_loop_is_measured() -> None:
    lag = LoopLag(interval_s=0.01, window=5)
    stop = asyncio.Event()
    before = _count()
    task = asyncio.create_task(lag.run(stop))
    await asyncio.sleep(0.03)
    time.sleep(0.08)  # noqa: ASYNC251 — a handler that computes for 80 ms without yielding
    await asyncio.sleep(0.03)
    stop.set()
    await task
    assert max(lag._recent) >= 0.05
    assert _count() > before
