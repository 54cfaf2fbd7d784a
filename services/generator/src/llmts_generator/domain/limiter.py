"""A fair, capacity-limited semaphore shared by every job of the process (one per provider).

When a permit frees up it goes to the waiting job that currently holds the fewest permits (ties: the job that
has waited longest), so one job with a large ``concurrency`` cannot starve a small one, and a job whose calls
are slow only ever occupies its fair share once others are waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import defaultdict, deque
from collections.abc import AsyncIterator


class FairLimiter:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be ≥ 1")
        self.capacity = capacity
        self.in_use = 0
        self.held: defaultdict[str, int] = defaultdict(int)
        self._waiters: dict[str, deque[asyncio.Future[None]]] = {}
        self._since: dict[str, int] = {}
        self._tick = itertools.count()

    def waiting(self, key: str | None = None) -> int:
        if key is not None:
            return len(self._waiters.get(key, ()))
        return sum(len(q) for q in self._waiters.values())

    def _grant(self, key: str) -> None:
        self.in_use += 1
        self.held[key] += 1

    async def acquire(self, key: str) -> None:
        if self.in_use < self.capacity and not self._waiters:
            self._grant(key)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._waiters.get(key)
        if queue is None:
            queue = self._waiters[key] = deque()
            self._since[key] = next(self._tick)
        queue.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release(key)  # granted just as we were cancelled: give it back
            else:
                self._forget(key, fut)
            raise

    def _forget(self, key: str, fut: asyncio.Future[None]) -> None:
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
        while self.in_use < self.capacity and self._waiters:
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
            self._grant(key)
            fut.set_result(None)

    @contextlib.asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        await self.acquire(key)
        try:
            yield
        finally:
            self.release(key)
