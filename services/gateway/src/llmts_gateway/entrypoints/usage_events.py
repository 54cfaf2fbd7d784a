"""Kafka subscriber of the gateway's quota ledger: a job's end settles its reservation.

One consumer group shared by every gateway replica (each terminal event settles once; settling is idempotent
anyway), from the earliest unread offset, committed after the ledger is updated: an event that arrives while the
gateway is down is settled when it comes back. A message that keeps failing goes to the DLQ.
"""

from __future__ import annotations

from collections.abc import Callable

from llmts_common.contracts import GenerationCancelled, GenerationCompleted, GenerationFailed, Message, topics
from llmts_common.envelope import Envelope
from llmts_common.kafka import register_consumer
from llmts_common.runtime import ServiceRuntime
from llmts_gateway import handlers


def register(runtime: ServiceRuntime, deps: Callable[[], handlers.Deps | None], *, group_id: str) -> None:
    assert runtime.broker is not None
    assert runtime.publisher is not None

    async def settle(message: Message, _envelope: Envelope) -> None:
        current = deps()
        if current is not None and isinstance(
            message, GenerationCompleted | GenerationFailed | GenerationCancelled
        ):
            await handlers.settle_job(message, deps=current)

    register_consumer(
        runtime.broker,
        topic=topics.GENERATION_EVENTS,
        group_id=group_id,
        handlers={GenerationCompleted: settle, GenerationFailed: settle, GenerationCancelled: settle},
        publisher=runtime.publisher,
        description="Settles a job's quota reservation to its billed cost when the job ends.",
    )
