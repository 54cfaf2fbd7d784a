"""Fixtures of the exporter's connected tests: the real local Kafka and MongoDB-wire server, a unique database
and consumer group per module, tokens signed by a test Ed25519 key (``tests.support.tokens``), and a collector of ``export.events``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from fastapi import FastAPI
from tests.support.tokens import Signer, make_signer

from llmts_common.contracts import (
    GenerationCompleted,
    GenerationStarted,
    ItemGenerated,
    Message,
    ModelRef,
    Usage,
    topics,
)
from llmts_common.envelope import Envelope
from llmts_common.kafka import EventPublisher, create_broker
from llmts_common.kafka_security import faststream_security, kafka_client_options
from llmts_common.mongo import create_client
from llmts_exporter.bootstrap import Exporter, bootstrap
from llmts_exporter.settings import ExporterSettings

MONGO_URL = os.environ.get("MONGO_URL", "mongodb://127.0.0.1:27017")
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


# ------------------------------------------------------------------------------------------------ kafka


async def start_group_at_end(group: str, topic_names: list[str]) -> None:
    """Commit the group's offsets at the current end of each topic, so a fresh test group skips history."""
    producer = AIOKafkaProducer(**kafka_client_options())
    await producer.start()
    try:
        tps = [TopicPartition(t, p) for t in topic_names for p in sorted(await producer.partitions_for(t))]
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(**kafka_client_options(), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.commit(dict(ends.items()))
    finally:
        await consumer.stop()


class EventCollector:
    """Reads a topic from its current end in the background and keeps the envelopes from ``source``.

    Other exporters may run against the same local Kafka (``make run``, other sessions) and answer the same
    commands from their own databases; only this module's exporter (its own ``source``) counts.
    """

    def __init__(self, topic: str, source: str) -> None:
        self.topic = topic
        self.source = source
        self.envelopes: list[Envelope] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        producer = AIOKafkaProducer(**kafka_client_options())
        await producer.start()
        try:
            parts = sorted(await producer.partitions_for(self.topic))
        finally:
            await producer.stop()
        self._consumer = AIOKafkaConsumer(**kafka_client_options(), group_id=None, enable_auto_commit=False)
        await self._consumer.start()
        tps = [TopicPartition(self.topic, p) for p in parts]
        self._consumer.assign(tps)
        await self._consumer.seek_to_end(*tps)
        for tp in tps:
            await self._consumer.position(tp)  # resolve "end" now, before anything is published
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    envelope = Envelope.model_validate_json(r.value)
                    if envelope.source == self.source:
                        self.envelopes.append(envelope)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer:
            await self._consumer.stop()

    def of(self, subject: str) -> list[Envelope]:
        return [e for e in self.envelopes if e.subject == subject]

    async def wait_for(self, subject: str, within: float = 60.0) -> Envelope:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            found = self.of(subject)
            if found:
                return found[0]
            await asyncio.sleep(0.1)
        raise AssertionError(f"no event for {subject} within {within}s")


# ------------------------------------------------------------------------------------------------ data

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "price": {"type": "number"},
        "in_stock": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "details": {
            "type": "object",
            "properties": {"color": {"type": "string"}, "note": {"type": "string"}},
        },
        "1st name": {"type": "string"},
        "a:b": {"type": "string"},
    },
}

PAYLOADS = [
    '=HYPERLINK("http://evil","клик")',
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "<script>alert('xss')</script>",
    "]]><evil/>",
    "тест\x01\x07контроль",
    "|pipe|\nnewline",
]


def make_items(n: int) -> list[dict[str, Any]]:
    return [
        {
            "name": f"Товар №{i} «Ёлка»",
            "price": round(10.5 + i, 2),
            "in_stock": i % 2 == 0,
            "tags": ["новинка", f"t{i}"],
            "details": {"color": "красный" if i % 3 else "синий", "note": PAYLOADS[i % len(PAYLOADS)]},
            "1st name": f"Иван {i}",
            "a:b": PAYLOADS[(i + 3) % len(PAYLOADS)],
        }
        for i in range(n)
    ]


def job_started(
    job_id: str, user_id: str, n: int, *, name: str = "Каталог товаров: тест/№1"
) -> GenerationStarted:
    return GenerationStarted(
        job_id=job_id,
        user_id=user_id,
        requested=n,
        model=ModelRef(provider="openrouter", id="openai/gpt-4o-mini"),
        template_id="tpl-1",
        template_version=3,
        started_at=datetime.now(UTC),
        template_name=name,
        output_format="json",
        item_schema=SCHEMA,
    )


def job_items(job_id: str, user_id: str, items: list[Any], *, start: int = 0) -> list[ItemGenerated]:
    return [
        ItemGenerated(
            job_id=job_id,
            user_id=user_id,
            index=i,
            data=data,
            attempts=1,
            usage=Usage(prompt_tokens=10, completion_tokens=20, cost_usd=0.0001),
            content_hash=f"h{i}",
        )
        for i, data in enumerate(items, start=start)
    ]


def job_completed(job_id: str, user_id: str, n: int) -> GenerationCompleted:
    return GenerationCompleted(
        job_id=job_id,
        user_id=user_id,
        status="completed",
        requested=n,
        succeeded=n,
        rejected=0,
        attempts=n,
        usage=Usage(prompt_tokens=10 * n, completion_tokens=20 * n, cost_usd=0.0001 * n),
        duration_seconds=1.5,
    )


# ------------------------------------------------------------------------------------------------ stack


@dataclass
class ShiftClock:
    """The service's clock, which a test can move forward (deadlines, leases, TTL) without sleeping."""

    shift: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.shift


@dataclass
class Stack:
    app: FastAPI
    exporter: Exporter
    http: httpx.AsyncClient
    publisher: EventPublisher
    events: EventCollector
    signer: Signer
    clock: ShiftClock
    settings: ExporterSettings

    async def publish(self, *messages: Message, message_id: str | None = None) -> None:
        for m in messages:
            await self.publisher.publish(m, message_id=message_id)

    async def poll(self, check: Callable[[], Any], within: float = 30.0) -> Any:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.1)
        raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    suffix = uuid.uuid4().hex[:10]
    settings = ExporterSettings(
        service_name=f"exporter-test-{suffix}",
        mongo_url=MONGO_URL,
        kafka_bootstrap_servers=KAFKA,
        mongo_db=f"llmts_test_exporter_{suffix}",
        kafka_group_id=f"test-exporter-{suffix}",
        export_wait_for_job_seconds=60,
        export_recheck_seconds=0.2,
        export_lease_seconds=6,
        export_page_size=10,
        log_json=False,
        log_level="WARNING",
        export_link_key="exporter-test-link-key-0123456789",
        export_link_ttl_seconds=600,
        public_base_url="http://exporter",
    )
    await start_group_at_end(settings.kafka_group_id, [topics.EXPORT_COMMANDS, topics.GENERATION_EVENTS])
    signer = make_signer()
    clock = ShiftClock()
    app, exporter = bootstrap(settings, verifier=signer.verifier(), clock=clock)
    events = EventCollector(topics.EXPORT_EVENTS, source=settings.service_name)
    await events.start()
    broker = create_broker(KAFKA, client_id=f"test-generator-{suffix}", security=faststream_security())
    await broker.start()
    publisher = EventPublisher(broker, source="test-generator")
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://exporter") as client,
        ):
            yield Stack(app, exporter, client, publisher, events, signer, clock, settings)
    finally:
        await broker.stop()
        await events.stop()
        cleanup = create_client(MONGO_URL)  # this module's own database only
        with contextlib.suppress(Exception):
            await cleanup.drop_database(settings.mongo_db)
        await cleanup.close()
