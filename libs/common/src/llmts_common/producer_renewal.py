"""Renewing a wedged idempotent producer.

After a broker restart the broker may have lost an idempotent producer's sequence state (or the producer dropped
a batch that already had sequence numbers: it failed while the partition had no leader). Every later send of that
producer to the partition then fails with ``OutOfOrderSequenceNumber`` (or ``UnknownProducerId`` /
``InvalidProducerEpoch``), for ever: aiokafka does not bump the producer epoch the way the Java client does
(KIP-360). Seen in chaos scenario 2 (Kafka restarted under a running job): the generator republished a job's
events in a loop, all refused, and no event of any later job on that partition went out.

:func:`renew_producer` replaces the broker's producer with a fresh one (a new producer id, sequences from 0); the
failed send is then retried by its caller (an outbox relay, a job resume), and consumers dedupe on the envelope id
as they always do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Any

import aiokafka
from aiokafka.errors import InvalidProducerEpoch, OutOfOrderSequenceNumber, UnknownProducerId
from faststream.kafka import KafkaBroker

log = logging.getLogger("llmts.kafka")

FATAL_PRODUCER_ERRORS: tuple[type[BaseException], ...] = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
)
_LOCKS: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


def _current(broker: KafkaBroker) -> Any:
    return getattr(broker.config.producer, "_producer", None)


async def renew_producer(broker: KafkaBroker, failed: Any) -> bool:
    """Replace the broker's producer if it is still ``failed`` (the one that raised); True when renewed here.
    Concurrent callers that saw the same failure renew it once."""
    lock = _LOCKS.setdefault(broker, asyncio.Lock())
    async with lock:
        if _current(broker) is not failed:
            return False  # renewed meanwhile by another caller
        kwargs = getattr(broker, "_connection_kwargs", None)
        if kwargs is None:
            return False
        fast: Any = broker.config.producer  # FastStream's AioKafkaFastProducerImpl (connect / disconnect)
        fresh = aiokafka.AIOKafkaProducer(**kwargs)
        with contextlib.suppress(Exception):
            await fast.disconnect()
        await fast.connect(
            fresh,
            serializer=getattr(broker.config.fd_config, "_serializer", None),
            codec=getattr(broker.config, "broker_codec", None),
        )
        log.warning("Kafka producer renewed after a fatal idempotence error (new producer id)")
        return True


async def publish_renewing(broker: KafkaBroker, *args: Any, **kwargs: Any) -> Any:
    """``broker.publish``; a fatal idempotence error renews the producer, then propagates (the caller retries)."""
    producer = _current(broker)
    try:
        return await broker.publish(*args, **kwargs)
    except FATAL_PRODUCER_ERRORS:
        await renew_producer(broker, producer)
        raise
