"""Our Kafka records, read back from the real broker with the official CloudEvents SDK's Kafka binding, are the
very events we published (structured mode: the SDK must not see them as binary-mode events)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer
from cloudevents.core.bindings import kafka as ce_kafka

from llmts_common.contracts import ExportReady, GenerationStarted, ItemGenerated, Message, ModelRef, Usage
from llmts_common.envelope import Envelope
from llmts_common.kafka import EventPublisher, create_broker
from llmts_common.kafka_security import faststream_security, kafka_client_options
from llmts_common.settings import KafkaSettings
from llmts_common.tracing import span


async def _read(bootstrap: str, topic: str, expect: int, within: float = 30.0) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        **kafka_client_options(KafkaSettings(kafka_bootstrap_servers=bootstrap)),
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    out: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + within
        while len(out) < expect and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(records)
    finally:
        await consumer.stop()
    return out


def _messages(job_id: str) -> list[Message]:
    return [
        GenerationStarted(
            job_id=job_id, user_id="u1", requested=2, model=ModelRef(provider="ollama", id="m"),
            template_id="t1", template_version=3, started_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
            template_name="Products", output_format="json", item_schema={"type": "object"},
        ),
        ItemGenerated(
            job_id=job_id, user_id="u1", index=0, data={"name": "Ёлка", "price": 1.5, "tags": [None, True]},
            attempts=1, usage=Usage(prompt_tokens=3, completion_tokens=4), content_hash="h",
        ),
        ExportReady(
            export_id="e-" + job_id, job_id=job_id, user_id="u1", format="csv", bytes=10, sha256="s", items=1,
            download_path="/exports/e/download",
        ),
    ]  # fmt: skip


async def test_the_cloudevents_sdk_reads_our_records_as_the_events_we_published(
    kafka_bootstrap: str, unique_topic: str
) -> None:
    broker = create_broker(kafka_bootstrap, client_id="test-cloudevents", security=faststream_security())
    publisher = EventPublisher(broker, source="generator", schema_base_url="https://llmts.test/schemas")
    await broker.start()
    sent: list[Envelope] = []
    try:
        job_id = uuid.uuid4().hex
        with span("POST /generate"):
            for message in _messages(job_id):
                envelope = publisher.envelope_for(message, correlation_id="req-42")
                await publisher.publish_envelope(envelope, unique_topic)
                sent.append(envelope)
    finally:
        await broker.stop()

    records = await _read(kafka_bootstrap, unique_topic, len(sent))
    assert len(records) == len(sent)
    by_id = {e.id: e for e in sent}  # records of different keys may sit on different partitions
    for record in records:
        headers = dict(record.headers)
        assert not [k for k in headers if k.lower().startswith("ce_")]
        assert [k for k in headers if "correlation" in k.lower()] == ["correlation_id"]
        event = ce_kafka.from_kafka_event(
            ce_kafka.KafkaMessage(headers=headers, key=record.key, value=record.value)
        )
        envelope = by_id.pop(event.get_id())
        assert event.get_type() == envelope.type
        assert event.get_source() == envelope.source
        assert event.get_time() == envelope.time
        assert event.get_data() == envelope.data
        assert event.get_subject() == envelope.subject == record.key.decode()
        assert event.get_dataschema() == envelope.dataschema
        assert event.get_datacontenttype() == "application/json"
        assert event.get_specversion() == "1.0"
        assert event.get_extension("schemaversion") == envelope.schemaversion == 1
        assert event.get_extension("traceparent") == envelope.traceparent == headers["traceparent"].decode()
        assert event.get_extension("correlationid") == "req-42" == headers["correlation_id"].decode()
    assert not by_id
