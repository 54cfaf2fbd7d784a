"""The group-commit writer of a running job."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from llmts_generator.adapters.metrics import record_batch
from llmts_generator.domain.ports import GenerationRepository
from llmts_generator.folding import Batch, Op, merge_ops
from llmts_generator.jobloop import JobAborted, JobLoop

log = logging.getLogger("llmts.generator.runner")

LINGER_S = 0.1
"""How long a long job's operations gather before a batch is written (see :class:`JobWriter`)."""
LINGER_AFTER_ITEMS = 100
"""Items a job must have stored before its batches gather: a small job never waits."""
LINGER_FULL_OPS = 16
"""Operations queued at which a gathering batch is written at once (the smallest backlog a slot waits at)."""


def _routine(op: Op) -> bool:
    """An attempt or item record of a slot, which nobody waits for: it may gather. Anything else (a job-level
    event, a status or model change, an empty operation that drains the writer) is awaited by its caller."""
    return bool(op.attempts or op.items) and not (op.set or op.job_outbox)


class JobWriter(JobLoop):
    """One sequential writer per job: fenced job update → attempts → items (ordered) → hand over to the flusher.

    A transient storage failure (MongoDB away: connection lost, server restarting) does not lose anything: the
    batch in hand and everything submitted meanwhile stay queued, :attr:`storage_ok` turns false (the runner
    stops launching provider calls; calls in flight finish and their operations queue up), and the same batch is
    sent again with backoff until it is durable, for at most ``max_outage_s``. Sending a batch again is
    idempotent: the job update is numbered (``write_seq``, see :meth:`~llmts_generator.domain.ports.GenerationRepository.write_batch`),
    attempts are keyed by id, items already stored with the same envelope id are skipped. When the job is not
    ours any more (the outage outlasted the lease and another process claimed it) or the outage lasts too long,
    the attempts held are stored as orphans (billing) before the writer fails.

    A long job's batches gather (issue 14, fairness): once the writer has stored ``linger_after_items`` items, it
    lets its slots' attempt and item records queue for up to ``linger_s`` before writing them (less once
    ``LINGER_FULL_OPS`` are queued; never once an operation someone awaits is queued — a job-level event such as
    the terminal one, a status or model change, an empty drain — nor once closed). A 10,000-item
    job then costs the shared database a few round trips per tenth of a second instead of three per item or two,
    so another user's small job — which never lingers — does not queue behind its writes. Its items reach
    storage and Kafka at most ``linger_s`` later; nothing is acknowledged earlier than before."""

    _name = "writer"
    _failure = "job write failed"

    def __init__(
        self,
        repo: GenerationRepository,
        job_id: str,
        owner: str,
        run: int,
        on_written: Callable[[Batch], None],
        watermarks: Callable[[], dict[str, int]],
        *,
        write_seq: int = 0,
        max_outage_s: float = 120.0,
        retry_base_s: float = 0.1,
        retry_cap_s: float = 2.0,
        lease_until: Callable[[], datetime] | None = None,
        on_storage: Callable[[bool], None] | None = None,
        linger_s: float = LINGER_S,
        linger_after_items: int = LINGER_AFTER_ITEMS,
    ) -> None:
        super().__init__(job_id)
        self._repo = repo
        self._owner = owner
        self._run = run
        self._on_written = on_written
        self._watermarks = watermarks
        self._seq = write_seq
        self._max_outage_s = max_outage_s
        self._retry_base_s = retry_base_s
        self._retry_cap_s = retry_cap_s
        self._lease_until = lease_until
        self._on_storage = on_storage
        self._linger_s = linger_s
        self._linger_after_items = linger_after_items
        self.items_written = 0
        self.lingered = 0
        self._queue: list[tuple[Op, asyncio.Future[None]]] = []
        self._storage = asyncio.Event()
        self._storage.set()
        self.writes = 0
        self.retries = 0
        self.outages = 0
        self.orphaned = 0

    @property
    def backlog(self) -> int:
        return len(self._queue)

    @property
    def storage_ok(self) -> bool:
        """False while the writer is waiting for the database to come back, or once it failed."""
        return self._storage.is_set() and self.error is None

    async def storage_available(self) -> None:
        """Wait while the database is away (the writer is retrying a batch); raises :class:`JobAborted` once the
        writer failed (nothing more could be stored: no new provider call)."""
        await self._storage.wait()
        if self.error is not None:
            raise JobAborted(f"writer failed: {self.error!r}")

    def submit(self, op: Op) -> asyncio.Future[None]:
        """Queue an operation; the future resolves once it is durable. Never cancelled by the caller's fate."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.error is not None:
            fut.set_exception(JobAborted(f"writer failed: {self.error!r}"))
            fut.exception()  # mark retrieved
            return fut
        if self._closed:
            raise RuntimeError("writer closed")
        self._queue.append((op, fut))
        self._wake.set()
        return fut

    def _set_storage(self, ok: bool) -> None:
        if ok == self._storage.is_set():
            return
        if ok:
            self._storage.set()
        else:
            self._storage.clear()
        if self._on_storage is not None:
            self._on_storage(ok)

    async def _write_once(self, update: dict[str, Any], batch: Batch, seq: int, again: bool) -> None:
        body = {k: dict(v) for k, v in update.items()}
        if again and self._lease_until is not None:
            # the renewals failed during the outage: the first write that gets through extends the lease
            body.setdefault("$set", {})["lease_until"] = self._lease_until()
        await self._repo.write_batch(self._job_id, self._owner, self._run, seq, body)
        await self._repo.insert_attempts(batch.attempts)
        await self._repo.insert_items(batch.items, again=again)

    async def _write(self, ops: Sequence[Op]) -> Batch:
        update, batch = merge_ops(ops)
        marks = self._watermarks()
        if marks:
            update.setdefault("$max", {}).update(marks)
        self._seq += 1
        seq = self._seq
        again = False
        outage_since: float | None = None
        tries = 0
        while True:
            try:
                await self._write_once(update, batch, seq, again)
                break
            except Exception as exc:
                if not self._repo.is_transient(exc):
                    raise
                now = time.monotonic()
                if outage_since is None:
                    outage_since = now
                    self.outages += 1
                    self._set_storage(False)
                    log.warning(
                        "job %s: storage unavailable, holding %d attempt(s) and %d item(s) and retrying: %r",
                        self._job_id,
                        len(batch.attempts),
                        len(batch.items),
                        exc,
                    )
                if now - outage_since >= self._max_outage_s:
                    raise
                tries += 1
                self.retries += 1
                again = True
                delay = min(self._retry_cap_s, self._retry_base_s * 2 ** min(tries, 16))
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
        if outage_since is not None:
            log.info(
                "job %s: storage back after %.1f s (%d retries)",
                self._job_id,
                time.monotonic() - outage_since,
                tries,
            )
            self._set_storage(True)
        self.writes += 1
        self.items_written += len(batch.items)
        record_batch(batch.attempts, batch.items)
        return batch

    async def _salvage(self, ops: Sequence[Op]) -> None:
        """Best effort before failing: store the attempts held (answered calls the provider billed)."""
        attempts = [a for op in ops for a in op.attempts]
        if not attempts:
            return
        try:
            self.orphaned += await self._repo.insert_orphan_attempts(attempts, self._run)
            log.warning("job %s: stored %d orphan attempt(s) before aborting", self._job_id, self.orphaned)
        except Exception as exc:
            log.error("job %s: %d attempt(s) could not be stored: %r", self._job_id, len(attempts), exc)

    def _should_linger(self) -> bool:
        return (
            self._linger_s > 0
            and self.items_written >= self._linger_after_items
            and not self._closed
            and all(_routine(op) for op, _ in self._queue)
        )

    async def _gather(self) -> None:
        """Let a long job's operations queue for up to ``linger_s`` (see the class doc)."""
        self.lingered += 1
        deadline = time.monotonic() + self._linger_s
        while len(self._queue) < LINGER_FULL_OPS and self._should_linger():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._queue:
                if self._closed:
                    return
                continue
            if self._should_linger():
                await self._gather()
            queued, self._queue = self._queue, []
            try:
                batch = await self._write([op for op, _ in queued])
            except BaseException as exc:
                self.error = exc
                held = queued + self._queue
                self._queue = []
                if not isinstance(exc, asyncio.CancelledError):
                    await self._salvage([op for op, _ in held])
                for _, fut in held:
                    if not fut.done():
                        fut.set_exception(JobAborted(f"job write failed: {exc!r}"))
                        fut.exception()
                self._set_storage(True)  # release whoever waits: the futures tell them the writer failed
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return
            self._on_written(batch)
            for _, fut in queued:
                if not fut.done():
                    fut.set_result(None)
            if self._queue:
                self._wake.set()
