"""Kafka helpers on FastStream/aiokafka.

- ``create_broker``: one broker per service (acks=all, idempotent producer).
- ``EventPublisher``: publishes a contract as a structured-mode CloudEvent (:func:`envelope_headers`), key =
  aggregate id, W3C ``traceparent`` and one ``correlation_id`` in headers.
- ``register_consumer``: a subscriber that parses the envelope, deduplicates on its id, runs the handler with
  retries, sends a message that keeps failing (or cannot be parsed) to ``<topic>.dlq`` with the error, and commits
  the offset only after the effect (:class:`OffsetCommitter`: processed offsets, committed in groups). Transient
  infrastructure errors (Mongo or Kafka unreachable) are never dead-lettered: the offset is rewound and the
  message is retried until the dependency is back.
"""

from __future__ import annotations

import asyncio
import logging
import random
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.security import BaseSecurity
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import Counter
from pydantic import ValidationError

from llmts_common.contracts import REGISTRY, Message
from llmts_common.contracts.topics import dlq_topic
from llmts_common.envelope import CLOUDEVENTS_CONTENT_TYPE, DEFAULT_SCHEMA_BASE_URL, WIRE, Envelope, new_id
from llmts_common.logging import correlation_id_var
from llmts_common.mongo import TRANSIENT_MONGO_ERRORS, ProcessedMessages
from llmts_common.producer_renewal import publish_renewing
from llmts_common.tracing import current_traceparent, span

log = logging.getLogger("llmts.kafka")


class TransientError(Exception):
    """Raised by a handler for a failure that will pass (a dependency is down): retry, never dead-letter."""


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (TransientError, KafkaError, *TRANSIENT_MONGO_ERRORS)

Handler = Callable[[Any, Envelope], Awaitable[None]]


def create_broker(
    bootstrap_servers: str,
    *,
    client_id: str,
    graceful_timeout: float = 25.0,
    description: str | None = None,
    security: BaseSecurity | None = None,
) -> KafkaBroker:
    """``security``: TLS / SASL of the connection (:func:`llmts_common.kafka_security.faststream_security`)."""
    return KafkaBroker(
        bootstrap_servers.split(","),
        client_id=client_id,
        security=security,
        acks="all",
        enable_idempotence=True,
        graceful_timeout=graceful_timeout,
        description=description,
        logger=logging.getLogger(f"llmts.kafka.{client_id}"),
        log_level=logging.DEBUG,
        request_timeout_ms=30_000,
        retry_backoff_ms=200,
        # A job's event burst goes to one partition (key = job id). With aiokafka's 16 KiB default a batch of
        # ~1.5 KiB envelopes fills after ~10 records, and every further send() then waits for the previous
        # produce request (idempotence allows one in flight); 256 KiB (< the broker's 1 MiB message.max.bytes)
        # lets a burst of a few hundred events travel in one request. No linger: a lone event goes out at once.
        max_batch_size=262_144,
    )


def envelope_headers(envelope: Envelope) -> dict[str, str]:
    """The record headers of an envelope: a structured-mode CloudEvent (``content-type:
    application/cloudevents+json``, the whole event in the value, no ``ce_*`` headers), the W3C ``traceparent``
    and one correlation id, under FastStream's own ``correlation_id`` header name (FastStream would otherwise
    add a random one beside ours)."""
    headers = {"content-type": CLOUDEVENTS_CONTENT_TYPE}
    if envelope.traceparent:
        headers["traceparent"] = envelope.traceparent
    headers["correlation_id"] = envelope.correlationid or envelope.id
    return headers


def _producer_traceparent(message: Message) -> str:
    """The current trace context; without one (a background task) the message starts a trace of its own."""
    traceparent = current_traceparent()
    if traceparent is None:
        with span(
            f"{message.TOPIC} create", kind=SpanKind.PRODUCER, attributes=_attrs(message.TOPIC, message.TYPE)
        ):
            traceparent = current_traceparent()
    if traceparent is None:  # no tracer provider installed: ids still flow, nothing is exported
        ids = RandomIdGenerator()
        traceparent = f"00-{ids.generate_trace_id():032x}-{ids.generate_span_id():016x}-00"
    return traceparent


class EventPublisher:
    """Publishes contracts in their envelope; the Kafka key is the aggregate id so one aggregate stays ordered."""

    def __init__(
        self,
        broker: KafkaBroker,
        *,
        source: str,
        topic_prefix: str = "",
        schema_base_url: str = DEFAULT_SCHEMA_BASE_URL,
    ) -> None:
        """``schema_base_url``: where the gateway serves the schemas (``dataschema`` of every envelope)."""
        self._broker = broker
        self.source = source
        self.topic_prefix = topic_prefix
        self.schema_base_url = schema_base_url

    def topic(self, name: str) -> str:
        """The Kafka topic for a logical topic name (``KAFKA_TOPIC_PREFIX`` isolates deployments sharing a
        cluster, e.g. parallel test stacks)."""
        if not self.topic_prefix or name.startswith(self.topic_prefix):
            return name
        return f"{self.topic_prefix}{name}"

    def envelope_for(
        self, message: Message, *, correlation_id: str | None = None, message_id: str | None = None
    ) -> Envelope:
        """The envelope of ``message``: always with a ``traceparent`` and a correlation id (the request's, else
        the message's own id: it starts the chain)."""
        message_id = message_id or new_id()
        return message.to_envelope(
            source=self.source,
            traceparent=_producer_traceparent(message),
            correlationid=correlation_id or correlation_id_var.get() or message_id,
            message_id=message_id,
            schema_base_url=self.schema_base_url,
        )

    async def publish(
        self, message: Message, *, correlation_id: str | None = None, message_id: str | None = None
    ) -> Envelope:
        with span(
            f"{message.TOPIC} publish", kind=SpanKind.PRODUCER, attributes=_attrs(message.TOPIC, message.TYPE)
        ):
            envelope = self.envelope_for(message, correlation_id=correlation_id, message_id=message_id)
            await self.publish_envelope(envelope, message.TOPIC)
        return envelope

    async def publish_envelope(self, envelope: Envelope, topic: str) -> None:
        await publish_renewing(
            self._broker,
            envelope.model_dump_json().encode(),
            topic=self.topic(topic),
            key=envelope.subject.encode(),
            headers=envelope_headers(envelope),
        )

    async def publish_raw(
        self, value: bytes, *, topic: str, key: bytes | None, headers: dict[str, str]
    ) -> None:
        await publish_renewing(self._broker, value, topic=self.topic(topic), key=key, headers=headers)


def _attrs(topic: str, message_type: str) -> dict[str, str]:
    return {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.message.type": message_type,
    }


def _backoff(attempt: int, base: float = 0.2, cap: float = 5.0) -> float:
    return float(min(cap, base * (2**attempt)) * (0.5 + random.random() / 2))


class OffsetCommitter(ConsumerRebalanceListener):  # type: ignore[misc]
    """Commits the offsets of *processed* messages in groups instead of one commit round trip per message.

    A commit on the local broker takes ~7 ms, which capped a durable consumer at ~130 messages/s (the exporter's
    projection of ``ItemGenerated`` fell behind generation). Here a handled message only records
    ``offset + 1`` for its partition; the record is committed (explicit offsets, never the consumer's position,
    so never past a message still being handled) once ``max_pending`` messages wait or ``interval_s`` passed —
    checked after each message and by a background timer for the tail — and before partitions are revoked in a
    rebalance. What a crash can cost is the redelivery of at most ``interval_s`` of already-handled messages,
    which every consumer absorbs (dedup on the envelope id, idempotent effects).
    """

    def __init__(self, name: str, *, interval_s: float = 0.2, max_pending: int = 200) -> None:
        self.name = name
        self.interval_s = interval_s
        self.max_pending = max_pending
        self._pending: dict[TopicPartition, int] = {}
        self._count = 0
        self._last = 0.0
        self._consumer: Any = None
        self._lock: asyncio.Lock | None = None
        self._timer: asyncio.Task[None] | None = None

    def done(self, consumer: Any, record: Any) -> None:
        """``record`` has been handled (effect durable, or dead-lettered, or ignored)."""
        self._consumer = consumer
        self._pending[TopicPartition(record.topic, record.partition)] = record.offset + 1
        self._count += 1
        if self._timer is None or self._timer.done():
            self._timer = asyncio.get_running_loop().create_task(self._tick(), name=f"commit:{self.name}")

    def due(self) -> bool:
        loop = asyncio.get_running_loop()
        return self._count >= self.max_pending or (
            self._count > 0 and loop.time() - self._last >= self.interval_s
        )

    async def flush(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self._pending or self._consumer is None:
                return
            # partitions revoked meanwhile are left out (committing one would fail the whole call); their new
            # owner handles those messages again, idempotently
            assigned = self._consumer.assignment()
            offsets = {tp: offset for tp, offset in self._pending.items() if tp in assigned}
            self._pending.clear()
            self._count = 0
            self._last = asyncio.get_running_loop().time()
            if not offsets:
                return
            try:
                await self._consumer.commit(offsets)
            except KafkaError as exc:
                # partitions moved to another member, or the broker is away: those messages are redelivered
                # and handled idempotently; nothing processed is lost, nothing unprocessed was committed
                log.info("offset commit skipped for %s: %s", self.name, exc)

    async def _tick(self) -> None:
        """Commit the tail of a burst once no new message arrives to trigger it."""
        while self._count:
            await asyncio.sleep(self.interval_s)
            if self.due():
                await self.flush()

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.flush()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


_COMMITTERS: weakref.WeakKeyDictionary[KafkaBroker, list[OffsetCommitter]] = weakref.WeakKeyDictionary()
"""The committers of each broker, for :func:`flush_offsets` on a graceful stop."""


async def flush_offsets(broker: KafkaBroker) -> None:
    """Commit what every durable consumer of ``broker`` has handled so far (called before the broker stops)."""
    for committer in _COMMITTERS.get(broker, []):
        await committer.flush()


DEAD_LETTERS = Counter(
    "llmts_kafka_dead_letters_total",
    "Messages a consumer gave up on and sent to the dead-letter topic, by source topic and consumer",
    ["topic", "consumer"],
)


@dataclass
class _Dispatcher:
    """One subscriber's message path: decode, dispatch by type, deduplicate, retry, dead-letter, commit."""

    topic: str
    name: str
    by_type: dict[str, tuple[type[Message], Handler]]
    publisher: EventPublisher
    processed: Callable[[], ProcessedMessages | None] | None
    max_attempts: int
    committer: OffsetCommitter | None
    wanted: Callable[[bytes | None], bool] | None = None

    async def on_message(self, msg: KafkaMessage) -> None:
        try:
            await self.handle(msg)
        except TRANSIENT_ERRORS:
            if self.committer is None:
                raise
            await msg.nack()  # rewind to this message: it is handled again, nothing after it is committed
            return
        if self.committer is not None:
            self.committer.done(msg.consumer, msg.raw_message)
            if self.committer.due():
                await self.committer.flush()

    async def handle(self, msg: KafkaMessage) -> None:
        if self.wanted is not None and not self.wanted(getattr(msg.raw_message, "key", None)):
            return  # nobody here wants this record (by its key): skipped before any decoding
        try:
            envelope = Envelope.model_validate_json(msg.body, context=WIRE)
        except ValidationError as exc:
            await self.dead_letter(msg, exc, 1)
            return
        entry = self.by_type.get(envelope.type)
        if entry is None:
            if envelope.type not in REGISTRY:
                log.debug("ignoring unknown message type %s", envelope.type)
            return
        cls, fn = entry
        try:
            message = cls.from_envelope(envelope)
        except ValidationError as exc:
            await self.dead_letter(msg, exc, 1)
            return
        store = self.processed() if self.processed else None
        if store is not None and await store.seen(self.name, envelope.id):
            log.debug("duplicate delivery of %s skipped", envelope.id)
            return
        token = correlation_id_var.set(envelope.correlationid)
        try:
            await self.run(fn, message, envelope, msg)
            if store is not None:
                await store.mark(self.name, envelope.id)
        finally:
            correlation_id_var.reset(token)

    async def run(self, fn: Handler, message: Message, envelope: Envelope, msg: KafkaMessage) -> None:
        """The handler with retries: a transient error propagates (redelivery), others retry then dead-letter."""
        with span(
            f"{self.topic} process",
            kind=SpanKind.CONSUMER,
            traceparent=envelope.traceparent,
            attributes={**_attrs(self.topic, envelope.type), "messaging.message.id": envelope.id},
        ) as s:
            attempt = 0
            while True:
                try:
                    await fn(message, envelope)
                    return
                except TRANSIENT_ERRORS as exc:
                    s.record_exception(exc)
                    log.warning("transient failure handling %s, will redeliver: %s", envelope.type, exc)
                    await asyncio.sleep(_backoff(3))
                    raise
                except Exception as exc:
                    attempt += 1
                    s.record_exception(exc)
                    if attempt >= self.max_attempts:
                        s.set_status(Status(StatusCode.ERROR, str(exc)))
                        await self.dead_letter(msg, exc, attempt)
                        return
                    log.warning("handler failed (attempt %d/%d): %s", attempt, self.max_attempts, exc)
                    await asyncio.sleep(_backoff(attempt))

    async def dead_letter(self, msg: KafkaMessage, error: BaseException, attempts: int) -> None:
        record: Any = msg.raw_message
        headers = {
            k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
            for k, v in (record.headers or [])
        }
        headers.update(
            {
                "x-dlq-error": f"{type(error).__name__}: {error}"[:2000],
                "x-dlq-error-type": type(error).__name__,
                "x-dlq-topic": self.topic,
                "x-dlq-partition": str(record.partition),
                "x-dlq-offset": str(record.offset),
                "x-dlq-consumer": self.name,
                "x-dlq-attempts": str(attempts),
            }
        )
        await self.publisher.publish_raw(
            msg.body, topic=dlq_topic(self.topic), key=record.key, headers=headers
        )
        DEAD_LETTERS.labels(self.topic, self.name).inc()
        log.error(
            "message dead-lettered",
            extra={
                "topic": self.topic,
                "consumer": self.name,
                "error_type": type(error).__name__,
                "attempts": attempts,
            },
        )


def register_consumer(
    broker: KafkaBroker,
    *,
    topic: str,
    group_id: str | None,
    handlers: Mapping[type[Message], Handler],
    publisher: EventPublisher,
    processed: Callable[[], ProcessedMessages | None] | None = None,
    max_attempts: int = 3,
    description: str | None = None,
    auto_offset_reset: Literal["earliest", "latest"] = "earliest",
    durable_effect: bool = True,
    wanted: Callable[[bytes | None], bool] | None = None,
) -> Any:
    """Register one subscriber on ``topic`` dispatching by envelope type to ``handlers``.

    ``wanted`` (optional) is asked with each record's key before the record is decoded; a record it refuses is
    skipped (and committed like a handled one) — the gateway's fan-out skips the events of jobs nobody watches.

    ``processed`` is called per message (so the store can be bound after start-up) and may return None to skip
    deduplication. Messages of types this consumer has no handler for are acknowledged and ignored, so new event
    types never block old consumers.

    ``group_id=None`` (only without ``durable_effect``): no consumer group — the consumer reads every partition of
    the topic itself from ``auto_offset_reset`` and commits nothing (each gateway replica's live fan-out).
    """
    if group_id is None and durable_effect:
        raise ValueError("a consumer with a durable effect needs a consumer group (its committed offsets)")
    topic = publisher.topic(topic)
    name = f"{group_id or 'no-group'}:{topic}"
    committer = OffsetCommitter(name) if durable_effect else None
    if committer is not None:
        _COMMITTERS.setdefault(broker, []).append(committer)
    consumer = _Dispatcher(
        topic=topic,
        name=name,
        by_type={cls.TYPE: (cls, fn) for cls, fn in handlers.items()},
        publisher=publisher,
        processed=processed,
        max_attempts=max_attempts,
        committer=committer,
        wanted=wanted,
    )

    # No parameters: FastStream resolves a ``KafkaMessage`` parameter through its DI in a worker thread, one
    # thread hop per message (a quarter of the gateway's CPU under load); the message is read from the context.
    async def on_message() -> None:
        await consumer.on_message(broker.context.get_local("message"))

    on_message.__name__ = f"on_{topic.replace('.', '_')}"
    return broker.subscriber(
        topic,
        group_id=group_id,
        # A consumer with a durable effect commits offsets only after their effect, in groups (OffsetCommitter),
        # and rewinds on a transient error. A consumer without one (the gateway's live fan-out: clients replay
        # state on connect) lets the client auto-commit in the background instead.
        ack_policy=AckPolicy.MANUAL if durable_effect else AckPolicy.ACK_FIRST,
        listener=committer,
        auto_offset_reset=auto_offset_reset,
        description=description,
        max_poll_interval_ms=600_000,
    )(on_message)
