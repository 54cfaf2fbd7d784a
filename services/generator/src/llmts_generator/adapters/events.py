"""Publishing generation events to Kafka (the relay side of the embedded outbox)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from faststream.kafka import KafkaBroker

from llmts_common.contracts import Message
from llmts_common.envelope import Envelope
from llmts_common.kafka import EventPublisher, envelope_headers
from llmts_common.producer_renewal import FATAL_PRODUCER_ERRORS, renew_producer


class KafkaEventSink:
    """The :class:`~llmts_generator.domain.ports.EventSink` port on Kafka.

    Pipelines a batch: every record but the last is sent without waiting for its ack, then all acks are
    awaited, so a batch of N events costs about one broker round trip and keeps its order (same key, one
    idempotent producer)."""

    def __init__(self, publisher: EventPublisher, broker: KafkaBroker) -> None:
        self._publisher = publisher
        self._broker = broker

    def envelope_for(self, message: Message, *, message_id: str | None = None) -> Envelope:
        return self._publisher.envelope_for(message, message_id=message_id)

    async def publish(self, message: Message) -> None:
        await self._publisher.publish(message)

    async def publish_many(self, envelopes: Sequence[tuple[Envelope, str]]) -> None:
        if not envelopes:
            return
        if len(envelopes) == 1:
            env, topic = envelopes[0]
            await self._publisher.publish_envelope(env, topic)
            return
        producer = getattr(self._broker.config.producer, "_producer", None)
        futures: list[Any] = []
        try:
            for env, topic in envelopes[:-1]:
                fut = await self._broker.publish(
                    env.model_dump_json().encode(),
                    topic=self._publisher.topic(topic),
                    key=env.subject.encode(),
                    headers=envelope_headers(env),
                    no_confirm=True,
                )
                if isinstance(fut, asyncio.Future):
                    futures.append(fut)
            env, topic = envelopes[-1]
            await self._publisher.publish_envelope(env, topic)
            if futures:
                await asyncio.gather(*futures)
        except FATAL_PRODUCER_ERRORS:
            await renew_producer(self._broker, producer)  # the caller retries (flusher abort → resume)
            raise
        finally:
            for fut in futures:  # an unawaited failure is not "never retrieved" noise
                if fut.done() and not fut.cancelled():
                    fut.exception()
