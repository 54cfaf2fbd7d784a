"""The messaging backbone through the real broker: envelope, key and trace preserved, dedup, DLQ."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llmts_common.contracts import GenerationRequested, GenerationStarted, ModelRef, Prompts, TemplateSnapshot
from llmts_common.contracts.topics import dlq_topic
from llmts_common.envelope import Envelope
from llmts_common.kafka import EventPublisher, TransientError, create_broker, register_consumer
from llmts_common.kafka_security import faststream_security, kafka_client_options
from llmts_common.mongo import Database, ProcessedMessages
from llmts_common.outbox import Outbox
from llmts_common.settings import KafkaSettings
from llmts_common.tracing import setup_tracing, span, trace_id_of

EXPORTER = InMemorySpanExporter()
setup_tracing("llmts-tests", extra_processor=SimpleSpanProcessor(EXPORTER))


def _command(job_id: str) -> GenerationRequested:
    return GenerationRequested(
        job_id=job_id,
        user_id="u1",
        template=TemplateSnapshot(
            id="t",
            version=1,
            name="n",
            owner_id="u1",
            prompts=Prompts(user="hi {{ index }}"),
            schema={"type": "object"},
        ),
        model=ModelRef(provider="openrouter", id="openai/gpt-4o-mini"),
        count=3,
        requested_at=datetime.now(UTC),
    )


async def _wait_for(predicate: Any, within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def _read_all(bootstrap: str, topic: str, expect: int, within: float = 30.0) -> list[Any]:
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
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                out.extend(records)
    finally:
        await consumer.stop()
    return out


@pytest.fixture
async def brokers(kafka_bootstrap: str) -> AsyncIterator[tuple[Any, Any]]:
    """Two brokers, as two services have: 'gateway' (producer side) and 'generator' (consumer side)."""
    gw = create_broker(kafka_bootstrap, client_id="test-gateway", security=faststream_security())
    gen = create_broker(kafka_bootstrap, client_id="test-generator", security=faststream_security())
    yield gw, gen
    await gen.stop()
    await gw.stop()


async def test_round_trip_between_two_services(
    brokers: tuple[Any, Any], db: Database, unique_topic: str, kafka_bootstrap: str
) -> None:
    gw_broker, gen_broker = brokers
    events_topic = unique_topic + ".events"
    gw_pub = EventPublisher(gw_broker, source="gateway")
    gen_pub = EventPublisher(gen_broker, source="generator")
    received: list[tuple[GenerationRequested, Envelope]] = []
    replies: list[tuple[GenerationStarted, Envelope]] = []

    async def on_requested(msg: GenerationRequested, env: Envelope) -> None:
        received.append((msg, env))
        started = GenerationStarted(
            job_id=msg.job_id,
            user_id=msg.user_id,
            requested=msg.count,
            model=msg.model,
            template_id=msg.template.id,
            template_version=msg.template.version,
            started_at=datetime.now(UTC),
        )
        envelope = gen_pub.envelope_for(started)
        await gen_pub.publish_envelope(envelope, events_topic)

    async def on_started(msg: GenerationStarted, env: Envelope) -> None:
        replies.append((msg, env))

    register_consumer(
        gen_broker,
        topic=unique_topic,
        group_id=f"g-{uuid.uuid4().hex[:6]}",
        handlers={GenerationRequested: on_requested},
        publisher=gen_pub,
    )
    register_consumer(
        gw_broker,
        topic=events_topic,
        group_id=f"g-{uuid.uuid4().hex[:6]}",
        handlers={GenerationStarted: on_started},
        publisher=gw_pub,
    )
    await gen_broker.start()
    await gw_broker.start()

    outbox = Outbox(db["outbox"], gw_pub)
    job_id = uuid.uuid4().hex
    with span("POST /generate") as root:
        envelope = await outbox.add(_command(job_id), correlation_id="corr-1")
        trace_id = f"{root.get_span_context().trace_id:032x}"
    # the gateway's fast path, aimed at the test topic
    await gw_pub.publish_envelope(envelope, unique_topic)
    await _wait_for(lambda: bool(replies))

    msg, env = received[0]
    assert msg.job_id == job_id
    assert env.id == envelope.id
    assert env.subject == job_id
    assert env.source == "gateway"
    assert env.correlationid == "corr-1"
    assert trace_id_of(env.traceparent) == trace_id
    reply, reply_env = replies[0]
    assert reply.job_id == job_id
    assert reply_env.source == "generator"
    # the trace continued across the hop: the reply was produced inside the consumer's span of the same trace
    assert trace_id_of(reply_env.traceparent) == trace_id
    consumer_spans = [s for s in EXPORTER.get_finished_spans() if s.name == f"{unique_topic} process"]
    assert consumer_spans
    assert f"{consumer_spans[0].context.trace_id:032x}" == trace_id

    records = await _read_all(kafka_bootstrap, unique_topic, 1)
    assert records[0].key == job_id.encode()
    headers = dict(records[0].headers)
    assert Envelope.model_validate_json(records[0].value).id == envelope.id
    assert headers["content-type"] == b"application/cloudevents+json"
    assert headers["correlation_id"] == b"corr-1"
    assert trace_id_of(headers["traceparent"].decode()) == trace_id


async def test_duplicate_delivery_is_processed_once(
    brokers: tuple[Any, Any], db: Database, unique_topic: str
) -> None:
    gw_broker, gen_broker = brokers
    pub = EventPublisher(gw_broker, source="gateway")
    processed = ProcessedMessages(db)
    calls: list[str] = []

    async def handler(msg: GenerationRequested, env: Envelope) -> None:
        calls.append(env.id)

    register_consumer(
        gen_broker,
        topic=unique_topic,
        group_id=f"g-{uuid.uuid4().hex[:6]}",
        handlers={GenerationRequested: handler},
        publisher=EventPublisher(gen_broker, source="generator"),
        processed=lambda: processed,
    )
    await gen_broker.start()
    await gw_broker.start()
    first = pub.envelope_for(_command("j-dup"))
    second = pub.envelope_for(_command("j-other"))
    for env in (first, first, first, second):
        await pub.publish_envelope(env, unique_topic)
    await _wait_for(lambda: second.id in calls)
    await asyncio.sleep(0.5)
    assert calls.count(first.id) == 1
    assert calls.count(second.id) == 1


async def test_poison_message_goes_to_dlq_and_consumer_keeps_going(
    brokers: tuple[Any, Any], unique_topic: str, kafka_bootstrap: str
) -> None:
    gw_broker, gen_broker = brokers
    pub = EventPublisher(gw_broker, source="gateway")
    ok: list[str] = []

    async def handler(msg: GenerationRequested, env: Envelope) -> None:
        if msg.job_id == "always-fails":
            raise ValueError("cannot handle this job")
        ok.append(msg.job_id)

    register_consumer(
        gen_broker,
        topic=unique_topic,
        group_id=f"g-{uuid.uuid4().hex[:6]}",
        handlers={GenerationRequested: handler},
        publisher=EventPublisher(gen_broker, source="generator"),
        max_attempts=2,
    )
    await gen_broker.start()
    await gw_broker.start()
    await pub.publish_raw(b"{not json at all", topic=unique_topic, key=b"k1", headers={})
    bad_env = pub.envelope_for(_command("x"))
    broken = json.loads(bad_env.model_dump_json())
    broken["data"]["count"] = -5  # violates the contract
    await pub.publish_raw(json.dumps(broken).encode(), topic=unique_topic, key=b"k2", headers={})
    anonymous = json.loads(pub.envelope_for(_command("no-id")).model_dump_json())
    del anonymous["id"]  # could never be deduplicated: refused, not given a fresh id
    await pub.publish_raw(json.dumps(anonymous).encode(), topic=unique_topic, key=b"k3", headers={})
    await pub.publish_envelope(pub.envelope_for(_command("always-fails")), unique_topic)
    await pub.publish_envelope(pub.envelope_for(_command("fine")), unique_topic)
    await _wait_for(lambda: "fine" in ok)

    dead = await _read_all(kafka_bootstrap, dlq_topic(unique_topic), 4)
    assert len(dead) == 4
    assert "no-id" not in ok
    by_key = {r.key: (r.value, dict(r.headers)) for r in dead}
    value, headers = by_key[b"k1"]
    assert value == b"{not json at all"
    assert headers["x-dlq-error-type"] == b"ValidationError"
    assert b"count" in by_key[b"k2"][1]["x-dlq-error"]
    assert b"missing id" in by_key[b"k3"][1]["x-dlq-error"]
    failing = by_key[b"always-fails"][1]
    assert failing["x-dlq-error-type"] == b"ValueError"
    assert failing["x-dlq-attempts"] == b"2"
    assert failing["x-dlq-topic"] == unique_topic.encode()
    assert b"cannot handle this job" in failing["x-dlq-error"]


async def _committed(bootstrap: str, group_id: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(**kafka_client_options(KafkaSettings(kafka_bootstrap_servers=bootstrap)))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group_id)
    finally:
        await admin.close()
    return {
        tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0
    }


async def test_offsets_are_committed_in_groups_only_after_the_effect(
    brokers: tuple[Any, Any], unique_topic: str, kafka_bootstrap: str
) -> None:
    """Grouped commits never pass a message still being handled nor one that failed transiently, and the
    tail of a burst is committed without a further message."""
    gw_broker, gen_broker = brokers
    pub = EventPublisher(gw_broker, source="gateway")
    group_id = f"g-{uuid.uuid4().hex[:6]}"
    handled: list[int] = []
    gate = asyncio.Event()
    flaky_failures = [0]

    async def handler(msg: GenerationRequested, env: Envelope) -> None:
        if msg.count == 30:
            await gate.wait()  # the effect of message 30 is still under way
        if msg.count == 10 and flaky_failures[0] < 2:
            flaky_failures[0] += 1
            raise TransientError("storage away")  # rewound and handled again, never dead-lettered
        handled.append(msg.count)

    register_consumer(
        gen_broker,
        topic=unique_topic,
        group_id=group_id,
        handlers={GenerationRequested: handler},
        publisher=EventPublisher(gen_broker, source="generator"),
    )
    await gen_broker.start()
    await gw_broker.start()
    base = _command("one-job")  # one key: one partition, so offsets follow the publishing order
    for n in range(1, 51):
        await pub.publish_envelope(pub.envelope_for(base.model_copy(update={"count": n})), unique_topic)

    await _wait_for(lambda: 29 in handled)
    await asyncio.sleep(1.0)  # several commit intervals while message 30 is in its handler
    committed = await _committed(kafka_bootstrap, group_id, unique_topic)
    assert len(committed) == 1
    (first_partition_offset,) = committed.values()
    assert first_partition_offset <= 29  # offset of message 30 is 29: never committed past it
    assert first_partition_offset >= 10  # but what was handled before it is (message 10 after its retries)

    gate.set()
    await _wait_for(lambda: 50 in handled)
    assert flaky_failures[0] == 2
    assert sorted(set(handled)) == list(range(1, 51))
    assert handled.count(10) == 1  # the transient failures were not counted as handled

    async def all_committed() -> bool:
        return sum((await _committed(kafka_bootstrap, group_id, unique_topic)).values()) == 50

    for _ in range(100):  # the tail is committed by the timer, with no further message to trigger it
        if await all_committed():
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the tail of the burst was never committed")


async def test_records_the_consumer_does_not_want_are_skipped_before_decoding(
    brokers: tuple[Any, Any], unique_topic: str, kafka_bootstrap: str
) -> None:
    """``wanted`` sees each record's key: a refused record reaches no handler — not even a malformed one (it is
    not decoded, so it is not dead-lettered either) — and the consumer goes on."""
    gw_broker, gen_broker = brokers
    pub = EventPublisher(gw_broker, source="gateway")
    calls: list[str] = []
    keys: list[bytes | None] = []

    async def handler(msg: GenerationRequested, env: Envelope) -> None:
        calls.append(msg.job_id)

    def wanted(key: bytes | None) -> bool:
        keys.append(key)
        return key == b"j-watched"

    register_consumer(
        gen_broker,
        topic=unique_topic,
        group_id=f"g-{uuid.uuid4().hex[:6]}",
        handlers={GenerationRequested: handler},
        publisher=EventPublisher(gen_broker, source="generator"),
        wanted=wanted,
    )
    await gen_broker.start()
    await gw_broker.start()
    for job in ("j-other", "j-watched", "j-other-2"):
        await pub.publish_envelope(pub.envelope_for(_command(job)), unique_topic)
    await gw_broker.publish(b"not json at all", topic=unique_topic, key=b"j-unwatched")
    await pub.publish_envelope(pub.envelope_for(_command("j-watched")), unique_topic)
    await _wait_for(lambda: len(keys) >= 5 and calls.count("j-watched") == 2)
    assert calls == ["j-watched", "j-watched"]
    assert sorted(keys) == sorted([b"j-other", b"j-watched", b"j-other-2", b"j-unwatched", b"j-watched"])
    assert await _read_all(kafka_bootstrap, dlq_topic(unique_topic), expect=1, within=1.5) == []
