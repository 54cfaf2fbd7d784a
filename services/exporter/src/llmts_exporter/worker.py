"""The export worker: claims due exports from the ``exports`` collection under a lease, builds each file in a
thread and records it with a fenced write, so a crashed process's exports are picked up again once the lease
expires and a run that lost its lease can never overwrite the result of the run that took over."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from llmts_common.contracts import (
    ExportReady,
)
from llmts_common.envelope import new_id
from llmts_common.kafka import TRANSIENT_ERRORS
from llmts_exporter.domain.exports import Fail, JobView, Wait, readiness
from llmts_exporter.domain.links import DownloadLinks
from llmts_exporter.domain.ports import (
    Clock,
    ExportRecord,
    ExportRepository,
    FileStore,
    JobProjection,
    Upload,
)
from llmts_exporter.handlers import _finish_failed, _flush, download_path, parse_options, run_file_key
from llmts_exporter.writers import (
    FORMATS,
    ExportItem,
    ExportMeta,
    ExportOptions,
    SchemaDriftError,
    WriteStats,
    provenance_wanted,
    safe_filename,
    write_export,
)

log = logging.getLogger("llmts.exporter")

UPLOAD_CHUNK = 1 << 20
"""Bytes the writer thread hands to the store at a time."""


@dataclass(frozen=True)
class ExportPolicy:
    wait_for_job: timedelta = timedelta(minutes=10)
    recheck: timedelta = timedelta(seconds=1)
    lease: timedelta = timedelta(seconds=15)
    max_attempts: int = 5
    concurrency: int = 4
    page_size: int = 1000
    thread_timeout_seconds: float = 300.0


class _Cancelled(Exception):
    """The export lost its lease or the service is stopping."""


class _LoopWriter:
    """A synchronous file for the writer thread that hands 1 MiB chunks to an async upload on the event loop."""

    def __init__(
        self, upload: Upload, loop: asyncio.AbstractEventLoop, cancel: threading.Event, timeout: float
    ) -> None:
        self._upload = upload
        self._loop = loop
        self._cancel = cancel
        self._timeout = timeout
        self._buf = bytearray()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._buf += data
        if len(self._buf) >= UPLOAD_CHUNK:
            self._push()
        return len(data)

    def flush(self) -> None:
        """Chunks are pushed by size; the tail goes in :meth:`finish`."""

    def finish(self) -> None:
        if self._buf:
            self._push()

    def _push(self) -> None:
        if self._cancel.is_set():
            raise _Cancelled
        data = bytes(self._buf)
        self._buf.clear()
        asyncio.run_coroutine_threadsafe(self._upload.write(data), self._loop).result(self._timeout)


class ExportWorker:
    """Claims due exports and builds them, at most ``policy.concurrency`` at a time."""

    def __init__(
        self,
        *,
        jobs: JobProjection,
        exports: ExportRepository,
        store: FileStore,
        clock: Clock,
        policy: ExportPolicy,
        wake: asyncio.Event | None = None,
        links: DownloadLinks | None = None,
    ) -> None:
        """``links``: signs the download link of ``ExportReady`` (None: the event carries none)."""
        self.jobs = jobs
        self.links = links
        self.exports = exports
        self.store = store
        self.clock = clock
        self.policy = policy
        self.wake = wake or asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                await self.tick()
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=self.policy.recheck.total_seconds())
        finally:
            for task in list(self._running):
                task.cancel()
            if self._running:
                await asyncio.gather(*self._running, return_exceptions=True)

    async def tick(self) -> int:
        """Start as many due exports as there is room for; how many started."""
        started = 0
        while len(self._running) < self.policy.concurrency:
            now = self.clock()
            token = new_id()
            record = await self.exports.claim(now=now, lease_until=now + self.policy.lease, token=token)
            if record is None:
                break
            task = asyncio.create_task(self._guarded(record, token), name=f"export:{record.export_id}")
            self._running.add(task)
            task.add_done_callback(self._done)
            started += 1
        return started

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self.wake.set()

    async def drain(self) -> None:
        """Wait for the exports started so far (tests and shutdown)."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    async def _guarded(self, record: ExportRecord, token: str) -> None:
        try:
            await self.process(record, token)
        except asyncio.CancelledError:
            # stopping: hand the export back at once instead of leaving it to wait out its lease
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self.exports.release(
                        record.export_id,
                        token=token,
                        not_before=self.clock(),
                        waiting="interrupted by a shutdown",
                    ),
                    timeout=2.0,
                )
            raise
        except Exception:
            log.exception("export %s crashed; its lease will expire and it is retried", record.export_id)

    async def process(self, record: ExportRecord, token: str) -> None:
        """One claimed export: wait or fail until its job allows it, build this run's file, record it."""
        started = await self._start_run(record, token)
        if started is None:
            return
        job, options, attempt = started
        key = run_file_key(record.export_id, attempt)
        built = await self._build_file(record, job, options, token, key, attempt)
        if built is not None:
            await self._record_ready(record, token, key, attempt, *built)

    async def _start_run(self, record: ExportRecord, token: str) -> tuple[JobView, ExportOptions, int] | None:
        """(job, options, attempt) when a run may begin; otherwise the export is released or failed."""
        now = self.clock()
        options, problem = parse_options(record.format, record.options)
        if problem is not None or options is None:
            await _finish_failed(self.exports, record, token=token, reason=problem or "invalid", now=now)
            return None
        job = await self.jobs.get(record.job_id)
        items = await self.jobs.count_items(record.job_id) if job is not None and job.terminal else 0
        decision = readiness(
            job,
            job_id=record.job_id,
            user_id=record.user_id,
            items_projected=items,
            now=now,
            deadline=record.created_at + self.policy.wait_for_job,
        )
        if isinstance(decision, Wait):
            await self.exports.release(
                record.export_id, token=token, not_before=now + self.policy.recheck, waiting=decision.reason
            )
            return None
        if isinstance(decision, Fail):
            await _finish_failed(self.exports, record, token=token, reason=decision.reason, now=now)
            return None
        assert job is not None
        attempt = await self.exports.begin_run(record.export_id, token=token, now=now)
        if attempt is None:
            return None
        if attempt > self.policy.max_attempts:
            reason = f"gave up after {self.policy.max_attempts} attempts to build the file"
            await _finish_failed(self.exports, record, token=token, reason=reason, now=now)
            return None
        return job, options, attempt

    async def _build_file(
        self, record: ExportRecord, job: JobView, options: ExportOptions, token: str, key: str, attempt: int
    ) -> tuple[WriteStats, str, str] | None:
        """(stats, filename, filename*) of the written file; ``None`` when the run ended otherwise."""
        try:
            return await self._build(record, job, options, token, key)
        except _Cancelled:
            log.warning("export %s interrupted (lease lost or stopping)", record.export_id)
        except (SchemaDriftError, ValueError, TypeError) as exc:
            reason = f"cannot write {record.format}: {exc}"
            await _finish_failed(self.exports, record, token=token, reason=reason, now=self.clock())
        except TRANSIENT_ERRORS as exc:
            log.warning("export %s hit a transient error, retrying: %s", record.export_id, exc)
            await self._retry_later(record, token, f"retrying after {type(exc).__name__}")
        except Exception as exc:
            log.exception("export %s failed on attempt %d", record.export_id, attempt)
            if attempt >= self.policy.max_attempts:
                reason = f"failed after {attempt} attempts: {type(exc).__name__}: {exc}"
                await _finish_failed(self.exports, record, token=token, reason=reason, now=self.clock())
            else:
                await self._retry_later(record, token, f"retrying after {type(exc).__name__}")
        return None

    async def _record_ready(
        self,
        record: ExportRecord,
        token: str,
        key: str,
        attempt: int,
        stats: Any,
        filename: str,
        filename_star: str | None,
    ) -> None:
        """The fenced ``ready`` write naming this run's file; a run that lost its lease discards its file."""
        done = self.clock()
        fields = {
            "status": "ready",
            "reason": None,
            "bytes": stats.bytes,
            "sha256": stats.sha256,
            "items": stats.items,
            "filename": filename,
            "filename_star": filename_star,
            "content_type": FORMATS[record.format].content_type,
            "file_key": key,
            "store": self.store.name,
            "finished_at": done,
            "updated_at": done,
        }
        event = ExportReady(
            export_id=record.export_id,
            job_id=record.job_id,
            user_id=record.user_id,
            format=record.format,
            bytes=stats.bytes,
            sha256=stats.sha256,
            items=stats.items,
            download_path=download_path(record.export_id),
            **self._signed_link(record.export_id, done),
        )
        if not await self.exports.finish(record.export_id, token=token, fields=fields, events=[event]):
            # the lease was lost meanwhile: another run owns the export, this file is nobody's
            log.warning(
                "export %s: lease lost before the result was recorded; file discarded", record.export_id
            )
            with contextlib.suppress(Exception):
                await self.store.delete(key)
            return
        log.info(
            "export %s ready: %s, %d items, %d bytes",
            record.export_id,
            record.format,
            stats.items,
            stats.bytes,
        )
        # files of earlier runs that crashed or lost their lease (and the pre-run-key name): best effort, they are
        # never served (downloads follow file_key)
        for stale in [record.export_id, *(run_file_key(record.export_id, n) for n in range(1, attempt))]:
            with contextlib.suppress(Exception):
                await self.store.delete(stale)
        await _flush(self.exports, record.export_id)

    def _signed_link(self, export_id: str, now: datetime) -> dict[str, Any]:
        if self.links is None:
            return {}
        url, expires_at = self.links.sign(export_id, now)
        return {"download_url": url, "download_expires_at": expires_at}

    async def _retry_later(self, record: ExportRecord, token: str, why: str) -> None:
        with contextlib.suppress(*TRANSIENT_ERRORS):  # if Mongo is down, the lease expiry retries it
            await self.exports.release(
                record.export_id,
                token=token,
                not_before=self.clock() + self.policy.recheck * 5,
                waiting=why,
            )

    async def _meta(self, record: ExportRecord, job: JobView) -> ExportMeta:
        output_format = job.output_format
        if output_format is None:
            first = await self.jobs.items_page(record.job_id, after_index=-1, limit=1)
            output_format = "text" if first and isinstance(first[0][1], str) else "json"
        return ExportMeta(
            job_id=record.job_id,
            template_name=job.template_name or job.template_id or "export",
            template_version=job.template_version,
            model=job.model or "unknown",
            created_at=job.started_at or record.created_at,
            requested=job.requested,
            succeeded=job.succeeded,
            rejected=job.rejected,
            prompt_tokens=job.prompt_tokens,
            completion_tokens=job.completion_tokens,
            cost_usd=job.cost_usd,
            output_format=output_format,
            schema=job.item_schema if output_format == "json" else None,
            models=tuple(job.models),
            diversity=job.diversity,
        )

    async def _build(
        self, record: ExportRecord, job: JobView, options: ExportOptions, token: str, key: str
    ) -> tuple[WriteStats, str, str]:
        meta = await self._meta(record, job)
        day = meta.created_at.astimezone(UTC).date() if meta.created_at.tzinfo else meta.created_at.date()
        filename, filename_star = safe_filename(meta.template_name, record.job_id, record.format, day)
        spec = FORMATS[record.format]
        upload = await self.store.begin(key, filename=filename, content_type=spec.content_type)
        loop = asyncio.get_running_loop()
        cancel = threading.Event()
        heartbeat = asyncio.create_task(self._heartbeat(record.export_id, token, cancel))
        try:
            stats = await asyncio.to_thread(self._write, loop, upload, record, meta, options, cancel)
            if cancel.is_set():
                raise _Cancelled
            await upload.commit()
        except BaseException:
            cancel.set()
            with contextlib.suppress(Exception):
                await upload.abort()
            raise
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        stored = await self.store.size(key)
        if stored != stats.bytes:
            raise RuntimeError(f"stored file has {stored} bytes, the writer wrote {stats.bytes}")
        return stats, filename, filename_star

    async def _heartbeat(self, export_id: str, token: str, cancel: threading.Event) -> None:
        # renewed every fifth of the lease: two or three renewals may fail (a Mongo hiccup) before it lapses
        every = self.policy.lease.total_seconds() / 5
        while not cancel.is_set():
            await asyncio.sleep(every)
            try:
                ok = await self.exports.renew(
                    export_id, token=token, lease_until=self.clock() + self.policy.lease
                )
            except Exception as exc:
                log.warning("lease renewal of export %s failed: %s", export_id, exc)
                continue
            if not ok:
                cancel.set()

    def _write(
        self,
        loop: asyncio.AbstractEventLoop,
        upload: Upload,
        record: ExportRecord,
        meta: ExportMeta,
        options: ExportOptions,
        cancel: threading.Event,
    ) -> WriteStats:
        """Runs in a worker thread: the writers are synchronous; pages come from the event loop."""
        timeout = self.policy.thread_timeout_seconds
        page_size = self.policy.page_size
        jobs = self.jobs
        provenance = provenance_wanted(meta, options)

        def items() -> Iterator[ExportItem]:
            after = -1
            while True:
                if cancel.is_set():
                    raise _Cancelled
                page = asyncio.run_coroutine_threadsafe(
                    jobs.items_page(record.job_id, after_index=after, limit=page_size, provenance=provenance),
                    loop,
                ).result(timeout)
                for index, data, made in page:
                    yield ExportItem(index, data, made)
                if len(page) < page_size:
                    return
                after = page[-1][0]

        out = _LoopWriter(upload, loop, cancel, timeout)
        stats = write_export(record.format, items, meta, out, options)  # type: ignore[arg-type]
        out.finish()
        return stats
