"""Transactional outbox without multi-document transactions.

Two shapes:

- ``Outbox``: standalone entries, for a service whose accepted work *is* the message (the gateway stores the command
  and answers 202; the relay publishes it). One insert = durable acceptance.
- ``EmbeddedOutbox``: pending envelopes pushed into the aggregate's own document (``_outbox`` array) in the same
  single-document update that changes the aggregate, so the state change and its event are atomic. The relay
  publishes them and pulls them out.

Either way delivery is at least once; consumers deduplicate on the envelope id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from llmts_common.contracts import Message
from llmts_common.envelope import Envelope
from llmts_common.kafka import EventPublisher
from llmts_common.mongo import Collection, IndexSpec, utcnow

log = logging.getLogger("llmts.outbox")

OUTBOX_FIELD = "_outbox"


def outbox_entry(envelope: Envelope, topic: str) -> dict[str, Any]:
    return {"id": envelope.id, "topic": topic, "envelope": envelope.model_dump(mode="json")}


@dataclass(frozen=True)
class StoredMessage:
    """An entry of an ``Outbox``: the envelope, where it goes, when it was accepted, whether it went out."""

    envelope: Envelope
    topic: str
    created_at: datetime
    published: bool


class Outbox:
    COLLECTION = "outbox"

    def __init__(self, collection: Collection, publisher: EventPublisher) -> None:
        self._col = collection
        self._publisher = publisher

    @staticmethod
    def indexes() -> list[IndexSpec]:
        return [IndexSpec(Outbox.COLLECTION, [("published", 1), ("created_at", 1)], name="published_created")]

    async def add(
        self,
        message: Message,
        *,
        correlation_id: str | None = None,
        message_id: str | None = None,
        topic: str | None = None,
    ) -> Envelope:
        """Store the message durably; ``topic`` overrides the contract's topic (isolated test deployments)."""
        envelope = self._publisher.envelope_for(message, correlation_id=correlation_id, message_id=message_id)
        await self._col.insert_one(
            {
                "_id": envelope.id,
                "topic": topic or message.TOPIC,
                "envelope": envelope.model_dump(mode="json"),
                "published": False,
                "created_at": utcnow(),
            }
        )
        return envelope

    async def publish_one(self, envelope: Envelope, topic: str) -> bool:
        """Try to publish now (the fast path after ``add``); the relay retries if this fails."""
        try:
            await self._publisher.publish_envelope(envelope, topic)
        except Exception as exc:
            log.warning("outbox fast-path publish failed, relay will retry: %s", exc)
            return False
        await self._col.update_one(
            {"_id": envelope.id}, {"$set": {"published": True, "published_at": utcnow()}}
        )
        return True

    async def relay_once(self, batch: int = 200) -> int:
        sent = 0
        cursor = self._col.find({"published": False}).sort("created_at", 1).limit(batch)
        async for doc in cursor:
            envelope = Envelope.model_validate(doc["envelope"])
            await self._publisher.publish_envelope(envelope, doc["topic"])
            await self._col.update_one(
                {"_id": doc["_id"]}, {"$set": {"published": True, "published_at": utcnow()}}
            )
            sent += 1
        return sent

    async def get(self, message_id: str) -> StoredMessage | None:
        """The entry stored under ``message_id`` (its envelope id), published or not, until it is purged."""
        doc = await self._col.find_one({"_id": message_id})
        return _stored(doc) if doc else None

    async def find_recent(
        self,
        message_type: str,
        *,
        since: datetime,
        data: Mapping[str, Any] | None = None,
        limit: int = 50,
    ) -> list[StoredMessage]:
        """Entries of ``message_type`` accepted at or after ``since`` whose envelope ``data`` has every given
        field value, newest first."""
        query: dict[str, Any] = {"envelope.type": message_type, "created_at": {"$gte": since}}
        query.update({f"envelope.data.{k}": v for k, v in (data or {}).items()})
        cursor = self._col.find(query).sort("created_at", -1).limit(limit)
        return [_stored(doc) async for doc in cursor]

    async def purge_published(self, older_than: timedelta) -> int:
        result = await self._col.delete_many(
            {"published": True, "published_at": {"$lt": utcnow() - older_than}}
        )
        return result.deleted_count


def _stored(doc: Mapping[str, Any]) -> StoredMessage:
    return StoredMessage(
        envelope=Envelope.model_validate(doc["envelope"]),
        topic=str(doc["topic"]),
        created_at=doc["created_at"],
        published=bool(doc.get("published")),
    )


class EmbeddedOutbox:
    """Relay for envelopes embedded in aggregate documents (field ``_outbox``) of the given collections."""

    def __init__(self, collections: Sequence[Collection], publisher: EventPublisher) -> None:
        self._cols = list(collections)
        self._publisher = publisher

    def entry(self, message: Message, *, correlation_id: str | None = None) -> dict[str, Any]:
        envelope = self._publisher.envelope_for(message, correlation_id=correlation_id)
        return outbox_entry(envelope, message.TOPIC)

    async def flush_document(self, col: Collection, doc_id: Any) -> int:
        doc = await col.find_one({"_id": doc_id}, {OUTBOX_FIELD: 1})
        return await self._flush(col, doc) if doc else 0

    async def _flush(self, col: Collection, doc: dict[str, Any]) -> int:
        sent = 0
        for entry in doc.get(OUTBOX_FIELD) or []:
            envelope = Envelope.model_validate(entry["envelope"])
            await self._publisher.publish_envelope(envelope, entry["topic"])
            await col.update_one({"_id": doc["_id"]}, {"$pull": {OUTBOX_FIELD: {"id": entry["id"]}}})
            sent += 1
        return sent

    async def relay_once(self, batch: int = 200) -> int:
        sent = 0
        for col in self._cols:
            async for doc in col.find({f"{OUTBOX_FIELD}.0": {"$exists": True}}, {OUTBOX_FIELD: 1}).limit(
                batch
            ):
                sent += await self._flush(col, doc)
        return sent


async def run_relay(
    relays: Sequence[Outbox | EmbeddedOutbox], *, interval: float = 1.0, stop: asyncio.Event
) -> None:
    """Publish what the fast path missed, forever, until ``stop`` is set."""
    while not stop.is_set():
        for relay in relays:
            try:
                await relay.relay_once()
            except Exception as exc:  # dependency down: try again next tick
                log.warning("outbox relay tick failed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
