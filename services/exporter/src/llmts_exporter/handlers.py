"""Use cases of the exporter: keep the job projection, accept export commands, build exports, clean up.

Handlers are plain async functions (message first, dependencies by keyword); the Kafka adapter in
``entrypoints/stream.py`` binds them. :class:`~llmts_exporter.worker.ExportWorker` builds the files, on the
helpers here (options, failing an export, file keys).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import datetime, timedelta
from typing import Any

from llmts_common.contracts import (
    ExportFailed,
    ExportRequested,
    GenerationStarted,
    ItemGenerated,
)
from llmts_exporter.domain.jobs import TerminalEvent, item_provenance, started_fields, terminal_fields
from llmts_exporter.domain.ports import (
    Clock,
    ExportRecord,
    ExportRepository,
    FileStore,
    JobProjection,
)
from llmts_exporter.writers import (
    FORMATS,
    ExportOptions,
)

log = logging.getLogger("llmts.exporter")


def run_file_key(export_id: str, attempt: int) -> str:
    """Each run of an export writes its own file: a run that lost its lease (its process cut off from MongoDB
    longer than the lease) can never write into the file of the run that took over. The fenced ``ready`` write
    names the file that counts (``file_key``)."""
    return f"{export_id}-r{attempt}"


def download_path(export_id: str) -> str:
    return f"/exports/{export_id}/download"


# --------------------------------------------------------------------------------------------- projection


async def on_generation_started(event: GenerationStarted, *, jobs: JobProjection) -> None:
    await jobs.apply(event.job_id, started_fields(event), terminal=False)


async def on_item_generated(event: ItemGenerated, *, jobs: JobProjection) -> None:
    await jobs.add_item(
        event.job_id, event.user_id, event.index, event.data, provenance=item_provenance(event)
    )


async def on_job_ended(event: TerminalEvent, *, jobs: JobProjection, wake: asyncio.Event) -> None:
    await jobs.apply(event.job_id, terminal_fields(event), terminal=True)
    wake.set()


# --------------------------------------------------------------------------------------------- commands


def parse_options(fmt: str, options: dict[str, Any]) -> tuple[ExportOptions | None, str | None]:
    """The writer options for a request, or why the request cannot be served."""
    if fmt not in FORMATS:
        return None, f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}"
    known = {f.name for f in dataclasses.fields(ExportOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        return None, f"unknown export options: {', '.join(unknown)}"
    try:
        return ExportOptions(**options), None
    except (TypeError, ValueError) as exc:
        return None, f"invalid export options: {exc}"


async def request_export(
    command: ExportRequested, *, exports: ExportRepository, clock: Clock, wake: asyncio.Event
) -> bool:
    """Record the export as queued (idempotent on export_id); fail it at once when it can never be served."""
    now = clock()
    created = await exports.create(
        ExportRecord(
            export_id=command.export_id,
            job_id=command.job_id,
            user_id=command.user_id,
            format=command.format,
            options=dict(command.options),
            status="queued",
            created_at=now,
            updated_at=now,
        )
    )
    if not created:
        log.info("export %s already recorded; duplicate command ignored", command.export_id)
        return False
    _, problem = parse_options(command.format, dict(command.options))
    if problem is not None:
        record = await exports.get(command.export_id)
        assert record is not None
        await _finish_failed(exports, record, token=None, reason=problem, now=now)
        return True
    wake.set()
    return True


async def _finish_failed(
    exports: ExportRepository, record: ExportRecord, *, token: str | None, reason: str, now: datetime
) -> None:
    event = ExportFailed(
        export_id=record.export_id,
        job_id=record.job_id,
        user_id=record.user_id,
        format=record.format,
        reason=reason,
    )
    fields = {"status": "failed", "reason": reason, "finished_at": now, "updated_at": now}
    if await exports.finish(record.export_id, token=token, fields=fields, events=[event]):
        log.info("export %s failed: %s", record.export_id, reason)
        await _flush(exports, record.export_id)


async def _flush(exports: ExportRepository, export_id: str) -> None:
    try:
        await exports.flush_events(export_id)
    except Exception as exc:  # the relay publishes it later
        log.warning("publishing events of export %s deferred: %s", export_id, exc)


# --------------------------------------------------------------------------------------------- clean-up


async def cleanup_expired(
    *, exports: ExportRepository, store: FileStore, now: datetime, ttl: timedelta, batch: int = 200
) -> int:
    """Delete exports (file first, then the document) created more than ``ttl`` ago; how many."""
    removed = 0
    while True:
        records = await exports.expired(before=now - ttl, limit=batch)
        for record in records:
            await store.delete(record.file_key or record.export_id)
            await exports.delete(record.export_id)
            removed += 1
        if len(records) < batch:
            return removed
