"""Kafka subscriber of the exporter on ``auth.events``: a deleted user's exports and files go.

Group ``<EXPORTER_KAFKA_GROUP_ID>-accounts``, committed after the effect, deduplicated on the envelope id,
idempotent; a message that keeps failing goes to ``auth.events.dlq``. An export being built at that moment may
finish its file after the erase: its fenced ``ready`` write then finds no export, and the run deletes its own file
(as for a lost lease).
"""

from __future__ import annotations

import logging
from typing import Protocol

from llmts_common.contracts import UserDeleted, topics
from llmts_common.envelope import Envelope
from llmts_common.kafka import register_consumer
from llmts_common.runtime import ServiceRuntime

log = logging.getLogger("llmts.exporter.accounts")


class UserErasure(Protocol):
    async def erase(self, user_id: str) -> dict[str, int]: ...


async def on_user_deleted(event: UserDeleted, *, erasure: UserErasure) -> dict[str, int]:
    erased = await erasure.erase(event.user_id)
    log.info("deleted user forgotten", extra={"user_id": event.user_id, **erased})
    return erased


def register(runtime: ServiceRuntime, erasure: UserErasure, *, group_id: str, max_attempts: int = 3) -> None:
    assert runtime.broker is not None
    assert runtime.publisher is not None

    async def deleted(event: UserDeleted, _: Envelope) -> None:
        await on_user_deleted(event, erasure=erasure)

    register_consumer(
        runtime.broker,
        topic=topics.AUTH_EVENTS,
        group_id=group_id,
        handlers={UserDeleted: deleted},
        publisher=runtime.publisher,
        processed=lambda: runtime.processed,
        max_attempts=max_attempts,
        description="Erases a deleted user's exports, their files and the exporter's copy of their jobs.",
    )
