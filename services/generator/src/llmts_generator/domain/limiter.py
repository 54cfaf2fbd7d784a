"""A fair semaphore per provider endpoint, shared by every job of the process, whose capacity is learned.

**Fairness.** When a permit frees up it goes to the waiting job that currently holds the fewest permits (ties: the
job that has waited longest), so one job with a large ``concurrency`` cannot starve a small one, and a job whose
calls are slow only ever occupies its fair share once others are waiting.

**Capacity.** Fixed (``FairLimiter(n)``), or adaptive: with an
:class:`~llmts_generator.domain.concurrency.AdaptiveLimit` the capacity is the controller's current limit, each call
reports how it went through its :class:`Permit` (the ``slot`` context manager maps a provider error onto an overload
signal itself), and a Retry-After pause holds every new grant until it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from llmts_generator.domain.concurrency import AdaptiveLimit, CallStart
from llmts_providers.errors import ProviderTimeout, ProviderUnavailable, RateLimited

log = logging.getLogger("llmts.generator.limiter")

OVERLOAD_STATUSES = frozenset({503, 529})  # "overloaded"; other 5xx are failures, not a capacity signal


def overload_signal(error: BaseException) -> tuple[bool, float | None]:
    """Whether a provider error says the endpoint is over capacity, and the pause it asked for (Retry-After):
    429, 503/529 and timeouts do; connection refused, other 5xx, 4xx and mid-stream errors do not."""
    if isinstance(error, RateLimited):
        return True, error.retry_after
    if isinstance(error, ProviderTimeout):
        return True, None
    if isinstance(error, ProviderUnavailable) and error.status_code in OVERLOAD_STATUSES:
        return True, error.retry_after
    return False, None


class Permit:
    """One granted call. ``first_token()`` when a streamed call's first chunk arrives, ``succeeded()`` when it
    answered; an exception leaving the ``slot`` block reports itself; nothing reported = neutral."""

    __slots__ = ("call", "first_token_at", "limiter", "ok", "reported_ttft_s", "started", "streamed")

    def __init__(self, limiter: FairLimiter, call: CallStart | None, streamed: bool, started: float) -> None:
        self.limiter = limiter
        self.call = call
        self.streamed = streamed
        self.started = started
        self.first_token_at: float | None = None
        self.reported_ttft_s: float | None = None
        self.ok = False

    def first_token(self) -> None:
        self.limiter.on_first_token(self, self.limiter.clock() - self.started)

    def succeeded(self, first_token_ms: float | None = None) -> None:
        """The call answered; ``first_token_ms`` (the result's) stands in for a first token not reported live."""
        self.ok = True
        if first_token_ms is not None:
            self.reported_ttft_s = first_token_ms / 1000.0


class FairLimiter:
    def __init__(
        self,
        capacity: int,
        *,
        name: str = "",
        controller: AdaptiveLimit | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be ≥ 1")
        self.ceiling = capacity
        self.name = name
        self.controller = controller
        self.clock = clock
        self.in_use = 0
        self.held: defaultdict[str, int] = defaultdict(int)
        self._waiters: dict[str, deque[asyncio.Future[CallStart | None]]] = {}
        self._since: dict[str, int] = {}
        self._tick = itertools.count()
        self._open: set[Permit] = set()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def capacity(self) -> int:
        return self.controller.current if self.controller is not None else self.ceiling

    def snapshot(self) -> dict[str, Any]:
        """What progress events and the job view show: ``current`` limit, ``ceiling``, calls ``in_flight`` (all
        jobs of this process), ``adaptive``."""
        return {
            "current": self.capacity,
            "ceiling": self.ceiling,
            "in_flight": self.in_use,
            "adaptive": self.controller is not None,
        }

    def waiting(self, key: str | None = None) -> int:
        if key is not None:
            return len(self._waiters.get(key, ()))
        return sum(len(q) for q in self._waiters.values())

    # --- the fair semaphore ----------------------------------------------------------------------------
    def _room(self) -> bool:
        if self.in_use >= self.capacity:
            return False
        return self.controller is None or not self.controller.paused(self.clock())

    def _grant(self, key: str) -> CallStart | None:
        self.in_use += 1
        self.held[key] += 1
        return self.controller.start(self.in_use) if self.controller is not None else None

    async def acquire(self, key: str) -> CallStart | None:
        if not self._waiters and self._room():
            return self._grant(key)
        fut: asyncio.Future[CallStart | None] = asyncio.get_running_loop().create_future()
        queue = self._waiters.get(key)
        if queue is None:
            queue = self._waiters[key] = deque()
            self._since[key] = next(self._tick)
        queue.append(fut)
        self._arm_timer()
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release(key)  # granted just as we were cancelled: give it back
            else:
                self._forget(key, fut)
            raise

    def _forget(self, key: str, fut: asyncio.Future[CallStart | None]) -> None:
        queue = self._waiters.get(key)
        if queue is None:
            return
        with contextlib.suppress(ValueError):
            queue.remove(fut)
        if not queue:
            self._waiters.pop(key, None)
            self._since.pop(key, None)

    def release(self, key: str) -> None:
        self.in_use -= 1
        self.held[key] -= 1
        if self.held[key] <= 0:
            del self.held[key]
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._room():
            key = min(self._waiters, key=lambda k: (self.held.get(k, 0), self._since[k]))
            queue = self._waiters[key]
            fut = queue.popleft()
            if not queue:
                self._waiters.pop(key, None)
                self._since.pop(key, None)
            else:
                self._since[key] = next(self._tick)  # round-robin among equals
            if fut.done():
                continue
            fut.set_result(self._grant(key))
        self._arm_timer()

    def poke(self) -> None:
        """Grant what the limit allows now (the pause timer calls it; tests with a fake clock too)."""
        self._timer = None
        self._wake()

    def _arm_timer(self) -> None:
        """While paused by a Retry-After with calls waiting, wake up when the pause ends."""
        ctl = self.controller
        if ctl is None or not self._waiters or self._timer is not None:
            return
        delay = ctl.paused_until - self.clock()
        if delay > 0:
            self._timer = asyncio.get_running_loop().call_later(delay, self.poke)

    # --- calls and their reports -----------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def slot(self, key: str, *, streamed: bool = False) -> AsyncIterator[Permit]:
        """One call of job ``key``. ``streamed``: the call will report its first token (queueing is judged on it)."""
        call = await self.acquire(key)
        permit = Permit(self, call, streamed, self.clock())
        self._open.add(permit)
        try:
            yield permit
        except BaseException as exc:
            self._ended_with(permit, exc)
            raise
        else:
            self._ended(permit)
        finally:
            self._open.discard(permit)
            self.release(key)

    def on_first_token(self, permit: Permit, ttft_s: float) -> None:
        ctl = self.controller
        if ctl is None or permit.call is None or permit.first_token_at is not None:
            return
        permit.first_token_at = self.clock()
        before = ctl.current
        if ctl.first_token(permit.call, ttft_s):
            log.info(
                "%s: concurrency %d → %d (queueing: first token after %.1f s)",
                self.name,
                before,
                ctl.current,
                ttft_s,
            )

    def _ended(self, permit: Permit) -> None:
        ctl = self.controller
        if ctl is None or permit.call is None or not permit.ok:
            return
        if permit.first_token_at is None and permit.reported_ttft_s is not None:
            self.on_first_token(permit, permit.reported_ttft_s)
        binding = bool(self._waiters) or self.in_use >= self.capacity  # (this call still holds its permit)
        ctl.success(permit.call, binding=binding, queue_building=self._queue_building(permit))

    def _ended_with(self, permit: Permit, error: BaseException) -> None:
        ctl = self.controller
        if ctl is None or permit.call is None:
            return
        overload, retry_after = overload_signal(error)
        if not overload:
            return
        before = ctl.current
        if ctl.overload(permit.call, retry_after_s=retry_after, now=self.clock()):
            log.info("%s: concurrency %d → %d (%s)", self.name, before, ctl.current, type(error).__name__)

    def _queue_building(self, ended: Permit) -> bool:
        """Another streamed call in flight has waited longer than the queue threshold for its first token."""
        ctl = self.controller
        threshold = ctl.queue_threshold() if ctl is not None else None
        if threshold is None:
            return False
        now = self.clock()
        return any(
            p is not ended and p.streamed and p.first_token_at is None and now - p.started > threshold
            for p in self._open
        )
