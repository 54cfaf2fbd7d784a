"""A fair semaphore per provider endpoint, shared by every job of the process, whose capacity is learned.

**Fairness** (:class:`~llmts_generator.domain.fairness.FairQueue`): when a permit frees up it goes to the waiting
user that holds the fewest permits, then to that user's waiting job that holds the fewest (ties: served least
recently), so one user's backlog of jobs cannot starve another user, one job with a large ``concurrency`` cannot
starve a small one, and slow calls only ever occupy their fair share once others are waiting. A call that names no
user counts as a user of its own (its job id).

**Capacity.** Fixed (``FairLimiter(n)``), or adaptive: with an
:class:`~llmts_generator.domain.concurrency.AdaptiveLimit` the capacity is the controller's current limit, each call
reports how it went through its :class:`Permit` (the ``slot`` context manager maps a provider error onto an overload
signal itself), and a Retry-After pause holds every new grant until it ends. Every provider's limiter also heeds the
process-wide :class:`~llmts_generator.domain.loadguard.LoadGuard` (calls in flight while the event loop lags).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from llmts_generator.domain.concurrency import AdaptiveLimit, CallStart
from llmts_generator.domain.fairness import FairQueue
from llmts_generator.domain.loadguard import LoadGuard
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
        guard: LoadGuard | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be ≥ 1")
        self.ceiling = capacity
        self.name = name
        self.controller = controller
        self.clock = clock
        self.in_use = 0
        self._waiters: FairQueue[asyncio.Future[CallStart | None]] = FairQueue()
        self._open: set[Permit] = set()
        self._timer: asyncio.TimerHandle | None = None
        # the process-wide cap while the event loop lags (shared by every provider's limiter)
        self.guard = guard
        if guard is not None:
            guard.subscribe(self._wake)

    @property
    def capacity(self) -> int:
        return self.controller.current if self.controller is not None else self.ceiling

    @property
    def held(self) -> Mapping[str, int]:
        """Permits held per job."""
        return self._waiters.job_held

    def held_by(self, user: str) -> int:
        return self._waiters.held(user=user)

    def snapshot(self) -> dict[str, Any]:
        """What progress events and the job view show: ``current`` limit, ``ceiling``, calls ``in_flight`` (all
        jobs of this process), ``adaptive``, and ``process_cap`` while the load guard caps the whole process."""
        cap = self.guard.snapshot()["cap"] if self.guard is not None else None
        return {
            "current": self.capacity,
            "ceiling": self.ceiling,
            "in_flight": self.in_use,
            "adaptive": self.controller is not None,
            "process_cap": cap,
        }

    def waiting(self, key: str | None = None, *, user: str | None = None) -> int:
        """Calls waiting for a permit: all, of job ``key``, or of ``user``."""
        return self._waiters.waiting(user=user, job=key)

    # --- the fair semaphore ----------------------------------------------------------------------------
    def _room(self) -> bool:
        if self.in_use >= self.capacity or (self.guard is not None and not self.guard.allows()):
            return False
        return self.controller is None or not self.controller.paused(self.clock())

    def _start(self) -> CallStart | None:
        self.in_use += 1
        if self.guard is not None:
            self.guard.started()
        return self.controller.start(self.in_use) if self.controller is not None else None

    async def acquire(self, key: str, user: str | None = None) -> CallStart | None:
        """A permit for one call of job ``key`` of ``user`` (default: the job is a user of its own)."""
        owner = key if user is None else user
        if not self._waiters and self._room():
            self._waiters.grant(owner, key)
            return self._start()
        fut: asyncio.Future[CallStart | None] = asyncio.get_running_loop().create_future()
        self._waiters.push(owner, key, fut)
        self._arm_timer()
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release(key, owner)  # granted just as we were cancelled: give it back
            else:
                self._waiters.remove(owner, key, fut)
            raise

    def release(self, key: str, user: str | None = None) -> None:
        self.in_use -= 1
        self._waiters.release(key if user is None else user, key)
        if self.guard is None:
            self._wake()
            return
        self.guard.ended()
        self.guard.notify()  # every provider's waiters, this one's included, in turns while the cap binds
        self._wake()  # (this one's own capacity, when the cap left room)

    def _wake(self) -> None:
        while self._waiters and self._room():
            picked = self._waiters.pop()
            assert picked is not None
            user, key, fut = picked
            if fut.done():  # (a cancelled waiter removes itself; this is only a safety net)
                self._waiters.release(user, key)
                continue
            fut.set_result(self._start())
        self._arm_timer()

    def poke(self) -> None:
        """Grant what the limit allows now (the pause timer calls it; tests with a fake clock too)."""
        self._timer = None
        self._wake()

    def _arm_timer(self) -> None:
        """While calls wait with permits free (a Retry-After pause holds them), wake up when the pause ends.

        Armed whatever the pause left: the pause may end between ``_room`` and here, and the loop fires a timer up
        to its clock resolution early (the pause not quite over when it pokes); waiting for a release instead
        would wait forever when no call is in flight. With every permit in use a release wakes the waiters."""
        ctl = self.controller
        if ctl is None or not self._waiters or self._timer is not None or self.in_use >= self.capacity:
            return
        if self.guard is not None and not self.guard.allows():
            return  # the process-wide cap holds them: a call's end or the cap's rise wakes them (guard.notify)
        delay = max(0.0, ctl.paused_until - self.clock())
        self._timer = asyncio.get_running_loop().call_later(delay, self.poke)

    # --- calls and their reports -----------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def slot(
        self, key: str, *, user: str | None = None, streamed: bool = False
    ) -> AsyncIterator[Permit]:
        """One call of job ``key`` of ``user``. ``streamed``: the call will report its first token (queueing is
        judged on it)."""
        call = await self.acquire(key, user)
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
            self.release(key, user)

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
