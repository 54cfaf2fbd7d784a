"""Kafka subscriber of the gateway on ``auth.events``: disabled and deleted accounts.

One consumer group for every replica (the effect is in Mongo; each replica's in-memory set re-reads it), from the
earliest unread offset, committed after the effect, deduplicated on the envelope id; every handler is idempotent
anyway. A message that keeps failing goes to ``auth.events.dlq``.
"""

from __future__ import annotations

import logging

from llmts_common.contracts import UserDeleted, UserDisabled, UserEnabled, topics
from llmts_common.envelope import Envelope
from llmts_common.kafka import register_consumer
from llmts_common.mongo import Collection
from llmts_common.runtime import ServiceRuntime
from llmts_gateway.adapters.accounts import RevokedUsers, forget_commands
from llmts_gateway.adapters.comparisons import forget_comparisons

log = logging.getLogger("llmts.gateway.accounts")


async def on_user_disabled(event: UserDisabled, *, revoked: RevokedUsers) -> None:
    await revoked.revoke(event.user_id, reason="disabled", at=event.disabled_at)


async def on_user_enabled(event: UserEnabled, *, revoked: RevokedUsers) -> None:
    await revoked.restore(event.user_id, at=event.enabled_at)


async def on_user_deleted(
    event: UserDeleted, *, revoked: RevokedUsers, outbox: Collection, comparisons: Collection | None = None
) -> None:
    await revoked.revoke(event.user_id, reason="deleted", at=event.deleted_at)
    erased = await forget_commands(outbox, event.user_id)
    forgotten = await forget_comparisons(comparisons, event.user_id) if comparisons is not None else 0
    log.info(
        "deleted user forgotten",
        extra={"user_id": event.user_id, "outbox_entries": erased, "comparisons": forgotten},
    )


def register(
    runtime: ServiceRuntime,
    revoked: RevokedUsers,
    outbox: Collection,
    *,
    group_id: str,
    comparisons: Collection | None = None,
) -> None:
    assert runtime.broker is not None
    assert runtime.publisher is not None

    async def disabled(event: UserDisabled, _: Envelope) -> None:
        await on_user_disabled(event, revoked=revoked)

    async def enabled(event: UserEnabled, _: Envelope) -> None:
        await on_user_enabled(event, revoked=revoked)

    async def deleted(event: UserDeleted, _: Envelope) -> None:
        await on_user_deleted(event, revoked=revoked, outbox=outbox, comparisons=comparisons)

    register_consumer(
        runtime.broker,
        topic=topics.AUTH_EVENTS,
        group_id=group_id,
        handlers={UserDisabled: disabled, UserEnabled: enabled, UserDeleted: deleted},
        publisher=runtime.publisher,
        processed=lambda: runtime.processed,
        max_attempts=runtime.settings.kafka_consumer_max_attempts,
        description="Refuses the access tokens of disabled and deleted accounts; forgets a deleted user's commands.",
    )
