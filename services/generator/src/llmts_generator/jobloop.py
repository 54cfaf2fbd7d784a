"""What the job's writer and flusher share: a background loop per job, and riding out a storage outage."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("llmts.generator.runner")


class JobAborted(Exception):
    """The runner gave up without a terminal state (lease lost, storage failure, shutdown)."""


class JobLoop:
    """The lifecycle the writer and the flusher share: one background loop per job, woken by ``_wake``;
    ``close`` lets it finish what is queued and re-raises its failure as :class:`JobAborted`, ``abort`` cancels."""

    _name = "loop"
    _failure = "failed"

    def __init__(self, job_id: str) -> None:
        self._job_id = job_id
        self._wake = asyncio.Event()
        self._closed = False
        self.error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"{self._name}:{self._job_id}")

    async def close(self) -> None:
        """Finish what is queued, then stop."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            await self._task
        if self.error is not None:
            raise JobAborted(f"{self._failure}: {self.error!r}")

    def abort(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()


async def retry_transient(
    what: str,
    call: Callable[[], Awaitable[None]],
    is_transient: Callable[[BaseException], bool],
    *,
    max_outage_s: float = 120.0,
    cap_s: float = 2.0,
) -> None:
    """Run an idempotent storage call, retrying it with backoff while the database is away (``is_transient``:
    the repository's classification of its failures)."""
    since = time.monotonic()
    tries = 0
    while True:
        try:
            await call()
            return
        except Exception as exc:
            if not is_transient(exc) or time.monotonic() - since >= max_outage_s:
                raise
            tries += 1
            if tries == 1:
                log.warning("%s: storage unavailable, retrying: %r", what, exc)
            await asyncio.sleep(min(cap_s, 0.1 * 2 ** min(tries, 16)) * (0.5 + random.random() / 2))
