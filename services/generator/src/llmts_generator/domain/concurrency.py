"""How many calls one provider endpoint gets at once: learned, not trusted (pure, no I/O, no clock of its own).

The configured per-provider limit (``PROVIDER_CONCURRENCY``) is only the **ceiling**; the controller finds the
endpoint's real capacity below it with additive increase / multiplicative decrease (AIMD), the rule TCP uses for
its congestion window, driven by four **overload signals**:

- **429** (rate limited) and **503/529** (overloaded): the server said so;
- a **timeout**: the call waited too long, most often in the server's queue;
- **queueing latency**: a streamed call's time to first token (TTFT) above ``queue_ratio`` × the lowest TTFT of
  the last ``TTFT_WINDOW`` calls + ``queue_slack_s``. On a server that serves fewer requests at once than it is
  sent, the extra ones wait in its queue, and that wait is part of their TTFT (a one-slot Ollama sends even the
  response headers with the first token). The lowest recent TTFT is the no-queue baseline, like the base RTT of TCP
  Vegas: a TTFT well above it means calls are queueing, before any of them times out. The slack keeps small
  absolute variations (a few hundred ms of prompt length or load) from counting. A non-streamed call's latency is
  not used: it grows with the answer's length, not only with queueing.

Rules (``limit`` is a float; the number of calls allowed is ``floor(limit)``, between 1 and the ceiling):

1. **Start** at ``initial`` (``PROVIDER_CONCURRENCY_INITIAL``) and grow by one per successful call (doubling per
   round trip, TCP's slow start) until the first overload signal or the ceiling.
2. **Grow** after that by ``1 / limit`` per successful call: one more call per round trip.
3. Only a success while the **limit binds** (calls are waiting for a permit, or all permits are in use) makes
   it grow: a job that sends two calls at a time proves nothing about twenty.
4. **Decrease** on an overload signal to ``backoff`` × min(limit, the level that proved too high), once per
   *epoch*: a call granted before the last decrease reports on the old limit and moves nothing (also for growth),
   so one burst of 429s is one decrease. A call's *level* is the number of calls in flight when it was granted,
   itself included; the level that proved too high is the second-lowest level among the refused calls of the
   burst (the lowest while only one has come back; each late answer of the same burst re-decides): the first
   calls of a process open their connections at once and can reach the server out of order, so a single refused
   call granted early says little.
5. **Remember** that level. Growing back stops just below it; the level is tried again (a *probe*: one more call
   than before) only after ``probe_rounds`` round trips at the limit (``probe_rounds × limit`` successes), twice as
   long after each probe that fails again at that level (up to ``MAX_PROBE_ROUNDS``), back to ``probe_rounds`` after
   one holds for a whole round trip. Without this, plain AIMD climbs back into the wall every few round trips:
   against a hidden capacity of 8 and 0.2 s calls it is a 429 about every second.
6. **Retry-After** on a 429/503 pauses new calls to the endpoint until then (at most ``max_pause_s``), whatever
   the epoch.

Times are plain floats (seconds, monotonic) passed in by the caller, so tests drive the controller with a fake
clock.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Final

TTFT_WINDOW: Final = 64  # the no-queue baseline is the lowest TTFT of this many recent streamed calls
MAX_PROBE_ROUNDS: Final = 64.0


@dataclass(frozen=True)
class AdaptiveConfig:
    """Tuning of one endpoint's controller (``PROVIDER_*`` settings of the generator)."""

    ceiling: int
    initial: int = 1
    backoff: float = 0.75
    queue_ratio: float = 2.0
    queue_slack_s: float = 0.5
    probe_rounds: float = 4.0
    max_pause_s: float = 120.0

    def __post_init__(self) -> None:
        if self.ceiling < 1:
            raise ValueError("ceiling must be ≥ 1")
        if not 0 < self.backoff < 1:
            raise ValueError("backoff must be between 0 and 1")


@dataclass(frozen=True)
class CallStart:
    """What the limiter knew when it granted a call."""

    epoch: int  # decreases so far: a report from an older epoch is about an older limit
    level: int  # calls in flight at the endpoint once this one was granted (itself included)


class AdaptiveLimit:
    """The AIMD controller of one endpoint (see the module doc). Not thread-safe; one event loop."""

    def __init__(self, config: AdaptiveConfig) -> None:
        self.config = config
        self.limit = float(max(1, min(config.ceiling, config.initial)))
        self.slow_start = self.limit < config.ceiling
        self.epoch = 0
        self.known_bad: int | None = (
            None  # the in-flight level that overloaded last (forgotten after a good probe)
        )
        self.probe_gap = config.probe_rounds
        self.held = 0  # successes just below known_bad since the last probe
        self.probing = False
        self.probe_done = 0  # successes at the probed level
        self.paused_until = 0.0
        self.decreases = 0
        self._ttft: deque[float] = deque(maxlen=TTFT_WINDOW)
        self._burst: list[int] = []  # levels at which the calls of the last decrease's burst were refused
        self._before = self.limit  # the limit before that decrease

    # --- what the limiter reads ------------------------------------------------------------------------
    @property
    def current(self) -> int:
        """Calls allowed at once now."""
        return max(1, min(self.config.ceiling, math.floor(self.limit)))

    def paused(self, now: float) -> bool:
        return now < self.paused_until

    def queue_threshold(self) -> float | None:
        """TTFT above which a streamed call has queued (None until a first TTFT is known)."""
        if not self._ttft:
            return None
        return self.config.queue_ratio * min(self._ttft) + self.config.queue_slack_s

    def start(self, level: int) -> CallStart:
        """A call was granted with ``level`` calls in flight (itself included)."""
        return CallStart(self.epoch, level)

    # --- signals ---------------------------------------------------------------------------------------
    def first_token(self, call: CallStart, ttft_s: float) -> bool:
        """A streamed call's first token arrived after ``ttft_s``; True when that shows queueing (an overload,
        reacted to at once, not when the call ends)."""
        threshold = self.queue_threshold()
        self._ttft.append(ttft_s)
        if threshold is not None and ttft_s > threshold:
            return self.overload(call)
        return False

    def success(self, call: CallStart, *, binding: bool, queue_building: bool = False) -> None:
        """A call ended well. ``binding``: the limit binds now (calls wait for a permit, or all are in use).
        ``queue_building``: another streamed call in flight has already waited longer than the queue threshold
        for its first token — queueing is under way, so the limit holds."""
        if call.epoch != self.epoch or not binding or queue_building:
            return
        self._grow()

    def overload(self, call: CallStart, *, retry_after_s: float | None = None, now: float = 0.0) -> bool:
        """A 429, 503/529, timeout or queueing signal on ``call``; True when the limit was decreased.
        ``retry_after_s`` (from ``now``) pauses new calls."""
        if retry_after_s is not None and retry_after_s > 0:
            pause = min(retry_after_s, self.config.max_pause_s)
            self.paused_until = max(self.paused_until, now + pause)
        level = max(2, call.level)  # 1 call at once is the floor: a level below 2 cannot be avoided
        if call.epoch == self.epoch - 1 and self._burst:  # a late answer of the burst already reacted to
            self._burst.append(level)
            self._decide()
            return False
        if call.epoch != self.epoch:
            return False  # from an older burst: long reacted to
        failed_again = self.known_bad is not None and level <= self.known_bad
        self.probe_gap = (
            min(MAX_PROBE_ROUNDS, self.probe_gap * 2) if failed_again else self.config.probe_rounds
        )
        self._before = self.limit
        self._burst = [level]
        self._decide()
        self.slow_start = False
        self.epoch += 1
        self.decreases += 1
        return True

    def _decide(self) -> None:
        """The level that proved too high is the second-lowest at which a call of the burst was refused (the lowest
        while only one has come back): the first calls of a process open their connections at once and may reach
        the server out of order, so one refused call granted early says little. Late answers re-decide."""
        levels = sorted(self._burst)
        self.known_bad = levels[1] if len(levels) > 1 else levels[0]
        self.limit = max(1.0, min(self._before, float(self.known_bad)) * self.config.backoff)
        self.probing = False
        self.held = 0

    # --- growth ----------------------------------------------------------------------------------------
    def _grow(self) -> None:
        ceiling = self.config.ceiling
        if self.probing:
            self.probe_done += 1
            if self.probe_done >= self.current:  # a round trip at the level that failed before: it holds now
                self.probing = False
                self.known_bad = None
                self.probe_gap = self.config.probe_rounds
            return
        step = 1.0 if self.slow_start else 1.0 / self.limit  # one success is 1/limit of a round trip
        target = min(float(ceiling), self.limit + step)
        if self.known_bad is not None and target >= self.known_bad:
            self.held += 1
            if self.held < self.probe_gap * self.current:
                return  # stay just below the level that overloaded last
            self.held = 0
            self.limit = float(min(ceiling, self.known_bad))
            self.probing = True
            self.probe_done = 0
            return
        self.limit = target
        if self.limit >= ceiling:
            self.slow_start = False
