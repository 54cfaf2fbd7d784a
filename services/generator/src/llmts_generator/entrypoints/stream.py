"""Kafka subscribers of the generator: ``generation.commands`` (group ``llmts-generator``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal

from llmts_common.contracts import (
    GenerationCancelRequested,
    GenerationReopenRequested,
    GenerationRequested,
    topics,
)
from llmts_common.envelope import Envelope
from llmts_common.kafka import register_consumer
from llmts_common.runtime import ServiceRuntime
from llmts_generator import handlers
from llmts_generator.domain.ports import GenerationRepository
from llmts_generator.manager import JobManager


def register(
    runtime: ServiceRuntime,
    *,
    repo: GenerationRepository,
    manager: JobManager,
    clock: Callable[[], datetime],
    group_id: str,
    topic: str = topics.GENERATION_COMMANDS,
    offset_reset: Literal["earliest", "latest"] = "earliest",
) -> None:
    assert runtime.broker is not None
    assert runtime.publisher is not None

    async def on_requested(message: GenerationRequested, envelope: Envelope) -> None:
        await handlers.handle_generation_requested(message, envelope, repo=repo, manager=manager, clock=clock)

    async def on_cancel(message: GenerationCancelRequested, envelope: Envelope) -> None:
        await handlers.handle_cancel_requested(message, envelope, repo=repo, manager=manager, clock=clock)

    async def on_reopen(message: GenerationReopenRequested, envelope: Envelope) -> None:
        await handlers.handle_reopen_requested(message, envelope, repo=repo, manager=manager, clock=clock)

    register_consumer(
        runtime.broker,
        topic=topic,
        group_id=group_id,
        handlers={
            GenerationRequested: on_requested,
            GenerationCancelRequested: on_cancel,
            GenerationReopenRequested: on_reopen,
        },
        publisher=runtime.publisher,
        processed=lambda: runtime.processed,
        max_attempts=runtime.settings.kafka_consumer_max_attempts,
        auto_offset_reset=offset_reset,
        description="Generation commands: store the job (then run it under a lease), flag a cancel, or start a "
        "new round of a finished job (extend / resume / retry-rejected).",
    )
