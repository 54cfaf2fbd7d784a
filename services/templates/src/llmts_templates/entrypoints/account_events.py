"""Kafka subscriber of the templates service on ``auth.events``: a deleted user's templates and versions go.

Group ``<KAFKA_GROUP_ID or llmts-templates>-accounts``, from the earliest unread offset, committed after the
effect, deduplicated on the envelope id; erasing is idempotent anyway. A message that keeps failing goes to
``auth.events.dlq``. Public templates of the user go too (they were theirs); no ``TemplateDeleted`` is published
for them (nobody consumes template events per template today).
"""

from __future__ import annotations

import logging
from typing import Protocol

from llmts_common.contracts import UserDeleted, topics
from llmts_common.envelope import Envelope
from llmts_common.kafka import register_consumer
from llmts_common.runtime import ServiceRuntime

log = logging.getLogger("llmts.templates.accounts")


class UserErasure(Protocol):
    async def erase(self, user_id: str) -> dict[str, int]:
        """Delete everything of the user; answers how many documents of each kind went."""


async def on_user_deleted(event: UserDeleted, *, erasure: UserErasure) -> dict[str, int]:
    erased = await erasure.erase(event.user_id)
    log.info("deleted user forgotten", extra={"user_id": event.user_id, **erased})
    return erased


def register(runtime: ServiceRuntime, erasure: UserErasure, *, group_id: str) -> None:
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
        max_attempts=runtime.settings.kafka_consumer_max_attempts,
        description="Erases a deleted user's templates and their versions.",
    )
