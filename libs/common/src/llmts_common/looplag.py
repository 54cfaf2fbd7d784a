"""How late a service's event loop runs what is due: its lag, the wait every ready task has at that moment.

A service is one event loop: a handler that computes for 50 ms delays every request, consumer and job of the
process by 50 ms, and a loop kept busy by one user's work delays everyone else's (issue 14). :class:`LoopLag` wakes
every ``interval_s`` and measures how much later than asked it woke; each sample goes to the histogram
``llmts_event_loop_lag_seconds`` (every service, on ``/metrics``) and to a short window of recent samples that code
of the process can read (:meth:`LoopLag.recent_p90`: the generator holds back new provider calls while it is high,
see its ``LOOP_LAG_*`` settings).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque

from prometheus_client import Histogram

LOOP_LAG = Histogram(
    "llmts_event_loop_lag_seconds",
    "How much later than due the service's event loop ran a timer (sampled every 0.1 s): the wait of every ready "
    "task at that moment",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


class LoopLag:
    """Samples the running loop's lag every ``interval_s``; keeps the last ``window`` samples."""

    def __init__(self, *, interval_s: float = 0.1, window: int = 10) -> None:
        if interval_s <= 0 or window < 1:
            raise ValueError("interval_s must be > 0 and window ≥ 1")
        self.interval_s = interval_s
        self._recent: deque[float] = deque(maxlen=window)

    def record(self, lag_s: float) -> None:
        lag_s = max(0.0, lag_s)
        self._recent.append(lag_s)
        LOOP_LAG.observe(lag_s)

    def recent_p90(self) -> float:
        """The 90th percentile of the recent samples (0 before the first): high only while the loop stays busy,
        not after one slow callback."""
        if not self._recent:
            return 0.0
        ordered = sorted(self._recent)
        return ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]

    async def run(self, stop: asyncio.Event) -> None:
        """Sample until ``stop`` is set (a background task of the service's runtime)."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            due = loop.time() + self.interval_s
            await asyncio.sleep(self.interval_s)
            self.record(loop.time() - due)
