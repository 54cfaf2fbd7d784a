"""How many provider calls the whole process keeps in flight while its own event loop is the bottleneck (pure).

Every provider's :class:`~llmts_generator.domain.limiter.FairLimiter` learns what its endpoint can take; none of
them knows what the *process* can take. Each call costs the generator's one event loop some CPU (rendering the
prompt, the client library, validation, the item's and attempt's records, their events): against a fast endpoint
(a local server, a fake at 0.2 s) one user's backlog can keep 64 calls in flight and the loop busy most of the
time. More calls then add no throughput, only lag — every other user's job, command, write and event waits behind
them (issue 14: another user's 10-item job took 1.6-2.9× as long behind a 10,000-item backlog, its calls fairly
served but every step around them late).

:class:`LoadGuard` is an AIMD controller of a process-wide cap on calls in flight, driven by the loop's recent lag
(p90 of the last second, sampled by ``llmts_common.looplag``):

- lag above ``target_s``: the cap drops to ``backoff`` × the calls in flight (at most once per ``interval``, never
  below ``floor``);
- lag below half the target while the cap binds (calls in flight within one of it): the cap grows by ``step``;
  once it is back above ``ceiling`` (the sum of the providers' ceilings) there is no cap.

The limiters grant fairly as before (the user holding the fewest permits first), so while the cap binds a user with
a small job still gets the next free call at once; the cap only decides how many calls the process runs, not whose.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class GuardConfig:
    target_s: float = 0.01
    floor: int = 8
    ceiling: int = 256
    backoff: float = 0.9
    step: int = 2

    def __post_init__(self) -> None:
        if self.target_s <= 0 or self.floor < 1 or self.ceiling < self.floor or not 0 < self.backoff < 1:
            raise ValueError("target_s > 0, 1 ≤ floor ≤ ceiling, 0 < backoff < 1")
        if self.step < 1:
            raise ValueError("step ≥ 1")


class LoadGuard:
    """The process-wide cap (``cap`` is ``math.inf`` while there is none) and the calls in flight it counts."""

    def __init__(self, config: GuardConfig | None = None) -> None:
        self.config = config or GuardConfig()
        self.cap: float = math.inf
        self.in_flight = 0
        self.decreases = 0
        self.lag_s = 0.0
        self._listeners: deque[Callable[[], None]] = deque()

    def subscribe(self, wake: Callable[[], None]) -> None:
        """``wake`` is called when calls may start again (the cap rose, or a call ended while it binds): each
        provider's limiter grants to its waiters then."""
        self._listeners.append(wake)

    def notify(self) -> None:
        """Let the providers' limiters grant while the cap allows, in turns: the one asked first goes last next
        time, so while the cap binds a freed call alternates between the providers whose calls wait (a user on
        another provider than the backlog's is not left behind it)."""
        for _ in range(len(self._listeners)):
            if not self.allows():
                return
            wake = self._listeners[0]
            self._listeners.rotate(-1)
            wake()

    def allows(self) -> bool:
        """Whether one more call may start now."""
        return self.in_flight < self.cap

    def started(self) -> None:
        self.in_flight += 1

    def ended(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)

    def update(self, lag_s: float) -> bool:
        """Adjust the cap to the loop's recent lag (called every interval); True when it rose (waiters may go)."""
        cfg = self.config
        self.lag_s = lag_s
        if lag_s > cfg.target_s:
            if self.in_flight >= cfg.floor:  # only calls in flight can have made the loop busy
                self.cap = max(float(cfg.floor), math.floor(min(self.cap, self.in_flight) * cfg.backoff))
                self.decreases += 1
            return False
        if math.isinf(self.cap) or lag_s > cfg.target_s / 2 or self.in_flight < self.cap - 1:
            return False
        self.cap += cfg.step
        if self.cap > cfg.ceiling:
            self.cap = math.inf
        return True

    def snapshot(self) -> dict[str, float | int | None]:
        return {
            "cap": None if math.isinf(self.cap) else int(self.cap),
            "in_flight": self.in_flight,
            "loop_lag_ms": round(self.lag_s * 1000, 1),
        }
