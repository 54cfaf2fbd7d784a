"""Transactional outbox without multi-document transactions.

Two shapes:

- ``Outbox``: standalone entries, for a service whose accepted work *is* the message (the gateway stores the command
  and answers 202; the relay publishes it). One insert = durable acceptance.
- ``EmbeddedOutbox``: pending envelopes pushed into the aggregate's own document (``_outbox`` array) in the same
  single-document update that changes the aggregate, so the state change and its event are atomic. The relay
  publishes them and pulls them out.

Either way delivery is at least once; consumers deduplicate on the envelope id.

The ``Outbox`` relay never blocks on one bad entry (no head-of-line blocking): entries are tried oldest first, and an
entry whose publish fails is skipped for a backoff while the next ones go on. An entry that can never be published
is **parked** at once — its envelope is over ``max_message_bytes`` (Kafka's 1 MiB message limit), Kafka refuses it
for good (message too large, invalid topic, not authorized) or it is not a valid envelope. One that keeps failing
is parked after ``max_attempts`` failures, counted only while the broker is known healthy (this outbox published
something within ``HEALTHY_WINDOW_S``), so a Kafka outage parks nothing. A parked entry keeps its
``parked_reason``; readers (the gateway's job view) report it as failed.

Kafka being away never holds up the one who adds an entry: the fast path (``publish_one``) gives up after
``publish_timeout_s`` (aiokafka would otherwise wait up to its 30 s request timeout for metadata) and is skipped
for ``FAST_PATH_PAUSE_S`` after a failure, until a publish succeeds again; the entry is durable and the relay
publishes it when Kafka is back. A relay tick whose publish times out stops there (the broker does not answer;
trying the next entries would only wait as long again) and counts no attempt against the entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiokafka.errors import (
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
)
from prometheus_client import Gauge
from pydantic import ValidationError

from llmts_common.contracts import Message
from llmts_common.envelope import Envelope
from llmts_common.kafka import EventPublisher
from llmts_common.mongo import Collection, IndexSpec, utcnow

log = logging.getLogger("llmts.outbox")

OUTBOX_FIELD = "_outbox"

MAX_MESSAGE_BYTES = 1_000_000
"""Below Kafka's default 1 MiB ``message.max.bytes`` with room for the record's key and headers."""
HEALTHY_WINDOW_S = 60.0
PUBLISH_TIMEOUT_S = 2.0
"""How long one publish may take before the broker counts as not answering."""
FAST_PATH_PAUSE_S = 5.0
"""After a failed fast-path publish, new entries skip the fast path this long (the relay sends them)."""
_PERMANENT = (MessageSizeTooLargeError, RecordTooLargeError, InvalidTopicError, TopicAuthorizationFailedError)


def permanent_failure(exc: BaseException) -> bool:
    """True when publishing again cannot succeed (too large, invalid topic, not authorized, not an envelope)."""
    return isinstance(exc, (*_PERMANENT, ValidationError))


def retry_delay(attempts: int, *, base: float = 1.0, cap: float = 60.0) -> float:
    """Seconds before the next try of an entry that failed ``attempts`` times (exponential, capped)."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


def outbox_entry(envelope: Envelope, topic: str) -> dict[str, Any]:
    return {"id": envelope.id, "topic": topic, "envelope": envelope.model_dump(mode="json")}


@dataclass(frozen=True)
class StoredMessage:
    """An entry of an ``Outbox``: the envelope, where it goes, when it was accepted, whether it went out."""

    envelope: Envelope
    topic: str
    created_at: datetime
    published: bool
    parked_reason: str | None = None


OLDEST_UNPUBLISHED = Gauge(
    "llmts_outbox_oldest_unpublished_seconds",
    "Age of the oldest outbox entry not published yet (parked ones excluded), as of the last relay tick; 0 if none",
    ["collection"],
)


class Outbox:
    COLLECTION = "outbox"

    def __init__(
        self,
        collection: Collection,
        publisher: EventPublisher,
        *,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_attempts: int = 10,
        on_park: Callable[[StoredMessage], Awaitable[None]] | None = None,
        publish_timeout_s: float = PUBLISH_TIMEOUT_S,
    ) -> None:
        """``on_park`` is told of every entry this outbox parks (e.g. to release what its acceptance held); it must
        be idempotent: :meth:`replay_parked` calls it again for parked entries after a restart."""
        self._col = collection
        self._publisher = publisher
        self.max_message_bytes = max_message_bytes
        self.max_attempts = max_attempts
        self.publish_timeout_s = publish_timeout_s
        self._on_park = on_park
        self._last_success = float("-inf")  # monotonic time of this outbox's last successful publish
        self._fast_path_paused_until = float("-inf")

    @staticmethod
    def indexes() -> list[IndexSpec]:
        return [IndexSpec(Outbox.COLLECTION, [("published", 1), ("created_at", 1)], name="published_created")]

    def _broker_healthy(self) -> bool:
        return time.monotonic() - self._last_success <= HEALTHY_WINDOW_S

    async def _publish(self, envelope: Envelope, topic: str) -> None:
        """Publish, refusing an envelope Kafka would refuse for its size (``MessageSizeTooLargeError``)."""
        size = len(envelope.model_dump_json())
        if size > self.max_message_bytes:
            raise MessageSizeTooLargeError(
                f"the message is {size} bytes, over the {self.max_message_bytes}-byte Kafka message limit"
            )
        # A publish cut short may still reach Kafka later: at least once, consumers deduplicate on the id.
        await asyncio.wait_for(
            self._publisher.publish_envelope(envelope, topic), timeout=self.publish_timeout_s
        )
        self._last_success = time.monotonic()
        self._fast_path_paused_until = float("-inf")

    async def _mark_published(self, entry_id: str) -> None:
        await self._col.update_one({"_id": entry_id}, {"$set": {"published": True, "published_at": utcnow()}})

    async def _record_failure(self, doc: Mapping[str, Any], exc: BaseException) -> None:
        """Count a failed publish of an entry; park it when it can never succeed or has failed too often."""
        reason = str(exc) or type(exc).__name__
        timed_out = isinstance(exc, TimeoutError)
        if timed_out:
            reason = f"Kafka did not answer within {self.publish_timeout_s} s"
        counted = (self._broker_healthy() and not timed_out) or permanent_failure(exc)
        attempts = int(doc.get("attempts", 0)) + (1 if counted else 0)
        update: dict[str, Any] = {
            "attempts": attempts,
            "last_error": f"{type(exc).__name__}: {reason}"[:500],
            "next_attempt_at": utcnow() + timedelta(seconds=retry_delay(max(1, attempts))),
        }
        if permanent_failure(exc) or attempts >= self.max_attempts:
            why = reason if permanent_failure(exc) else f"not published after {attempts} attempts: {reason}"
            update.update(parked=True, parked_reason=why[:500], parked_at=utcnow())
            log.error("outbox entry %s parked: %s", doc["_id"], why)
        else:
            log.warning("outbox entry %s not published (attempt %d): %s", doc["_id"], attempts, reason)
        await self._col.update_one({"_id": doc["_id"]}, {"$set": update})
        if update.get("parked"):
            await self._tell_parked(str(doc["_id"]))

    async def _tell_parked(self, entry_id: str) -> None:
        if self._on_park is None:
            return
        stored = await self.get(entry_id)
        if stored is None or stored.parked_reason is None:
            return
        try:
            await self._on_park(stored)
        except Exception as exc:  # replay_parked tells it again at the next start
            log.warning("outbox park hook failed for %s: %s", entry_id, exc)

    async def replay_parked(self, limit: int = 1000) -> int:
        """Tell ``on_park`` again of the parked entries (after a crash between parking and the hook)."""
        if self._on_park is None:
            return 0
        entries = await self.parked(limit)
        for stored in entries:
            await self._tell_parked(stored.envelope.id)
        return len(entries)

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
        """Try to publish now (the fast path after ``add``); the relay retries if this fails, and an entry that
        can never be published is parked at once. Skipped (False) while a recent fast-path publish failed."""
        if time.monotonic() < self._fast_path_paused_until:
            return False
        try:
            await self._publish(envelope, topic)
        except Exception as exc:
            log.warning("outbox fast-path publish failed, relay will retry: %s", exc or type(exc).__name__)
            if permanent_failure(exc):
                await self._record_failure({"_id": envelope.id}, exc)
            else:
                self._fast_path_paused_until = time.monotonic() + FAST_PATH_PAUSE_S
            return False
        await self._mark_published(envelope.id)
        return True

    async def relay_once(self, batch: int = 200) -> int:
        """Publish the due entries oldest first; a failing entry is skipped (backoff or parked), never blocking
        the ones after it. Returns how many were published."""
        sent = 0
        due = {
            "published": False,
            "parked": {"$ne": True},
            "$or": [{"next_attempt_at": {"$exists": False}}, {"next_attempt_at": {"$lte": utcnow()}}],
        }
        docs = [doc async for doc in self._col.find(due).sort("created_at", 1).limit(batch)]
        failed: list[tuple[dict[str, Any], Exception]] = []
        for doc in docs:
            try:
                await self._publish(Envelope.model_validate(doc["envelope"]), str(doc["topic"]))
            except TimeoutError as exc:
                failed.append((doc, exc))
                break  # the broker does not answer: the next entries would wait as long
            except Exception as exc:
                failed.append((doc, exc))
                continue
            await self._mark_published(doc["_id"])
            sent += 1
        # after the tick: a later entry's success shows the broker is healthy
        for failed_doc, error in failed:
            await self._record_failure(failed_doc, error)
        await self.oldest_unpublished_age()
        return sent

    async def oldest_unpublished_age(self) -> float:
        """Seconds the oldest entry still to publish has waited (0 if none); also the outbox's gauge."""
        doc = await self._col.find_one(
            {"published": False, "parked": {"$ne": True}}, {"created_at": 1}, sort=[("created_at", 1)]
        )
        age = 0.0 if doc is None else max(0.0, (utcnow() - doc["created_at"]).total_seconds())
        OLDEST_UNPUBLISHED.labels(self._col.name).set(age)
        return age

    async def parked(self, limit: int = 100) -> list[StoredMessage]:
        """Parked entries (never to be published), oldest first."""
        cursor = self._col.find({"parked": True}).sort("created_at", 1).limit(limit)
        return [_stored(doc) async for doc in cursor]

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
        parked_reason=doc.get("parked_reason") if doc.get("parked") else None,
    )


class EmbeddedOutbox:
    """Relay for envelopes embedded in aggregate documents (field ``_outbox``) of the given collections."""

    def __init__(
        self,
        collections: Sequence[Collection],
        publisher: EventPublisher,
        *,
        publish_timeout_s: float = PUBLISH_TIMEOUT_S,
    ) -> None:
        self._cols = list(collections)
        self._publisher = publisher
        self.publish_timeout_s = publish_timeout_s

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
            await asyncio.wait_for(
                self._publisher.publish_envelope(envelope, entry["topic"]), timeout=self.publish_timeout_s
            )
            await col.update_one({"_id": doc["_id"]}, {"$pull": {OUTBOX_FIELD: {"id": entry["id"]}}})
            sent += 1
        return sent

    async def relay_once(self, batch: int = 200) -> int:
        sent = 0
        for col in self._cols:
            pending = col.find({f"{OUTBOX_FIELD}.0": {"$exists": True}}, {OUTBOX_FIELD: 1}).limit(batch)
            async for doc in pending:
                try:  # one document whose events fail does not hold back the other documents
                    sent += await self._flush(col, doc)
                except TimeoutError:  # the broker does not answer: the other documents would wait as long
                    log.warning(
                        "embedded outbox relay: Kafka did not answer within %s s", self.publish_timeout_s
                    )
                    return sent
                except Exception as exc:
                    log.warning("embedded outbox of %s not flushed: %s", doc.get("_id"), exc)
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
