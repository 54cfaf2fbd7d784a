"""Kafka subscribers of the exporter: ``on_export_commands`` and ``on_generation_events`` (the job projection).

Both run in the consumer group ``EXPORTER_KAFKA_GROUP_ID`` (default ``llmts-exporter``), deduplicate on the
envelope id and commit the offset only after the handler's effect is in Mongo.
"""

from __future__ import annotations

import asyncio
from typing import Any

from llmts_common.contracts import (
    ExportRequested,
    GenerationCancelled,
    GenerationCompleted,
    GenerationFailed,
    GenerationStarted,
    ItemGenerated,
    topics,
)
from llmts_common.envelope import Envelope
from llmts_common.kafka import register_consumer
from llmts_common.runtime import ServiceRuntime
from llmts_exporter import handlers
from llmts_exporter.domain.ports import Clock, ExportRepository, JobProjection


def register(
    runtime: ServiceRuntime,
    *,
    group_id: str,
    jobs: JobProjection,
    exports: ExportRepository,
    clock: Clock,
    wake: asyncio.Event,
    max_attempts: int = 3,
) -> list[Any]:
    """Subscribe both topics; returns the subscribers (their consumers show the partition assignment)."""
    assert runtime.broker is not None
    assert runtime.publisher is not None

    async def on_export_requested(command: ExportRequested, _: Envelope) -> None:
        await handlers.request_export(command, exports=exports, clock=clock, wake=wake)

    async def on_started(event: GenerationStarted, _: Envelope) -> None:
        await handlers.on_generation_started(event, jobs=jobs)

    async def on_item(event: ItemGenerated, _: Envelope) -> None:
        await handlers.on_item_generated(event, jobs=jobs)

    async def on_ended(
        event: GenerationCompleted | GenerationFailed | GenerationCancelled, _: Envelope
    ) -> None:
        await handlers.on_job_ended(event, jobs=jobs, wake=wake)

    return [
        register_consumer(
            runtime.broker,
            topic=topics.EXPORT_COMMANDS,
            group_id=group_id,
            handlers={ExportRequested: on_export_requested},
            publisher=runtime.publisher,
            processed=lambda: runtime.processed,
            max_attempts=max_attempts,
            description="Accepts export requests: records the export, the worker builds the file.",
        ),
        register_consumer(
            runtime.broker,
            topic=topics.GENERATION_EVENTS,
            group_id=group_id,
            handlers={
                GenerationStarted: on_started,
                ItemGenerated: on_item,
                GenerationCompleted: on_ended,
                GenerationFailed: on_ended,
                GenerationCancelled: on_ended,
            },
            publisher=runtime.publisher,
            # ItemGenerated is idempotent on (job_id, index) and the job fields are plain sets, so the projection
            # needs no per-message dedup record (which would triple the writes per item).
            processed=None,
            max_attempts=max_attempts,
            description="Projects generation jobs and their items into the exporter's own read model.",
        ),
    ]
