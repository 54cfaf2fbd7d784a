"""The outbox relay never blocks on one bad entry: it parks what can never be published (too large for Kafka,
refused for good) or keeps failing while Kafka is healthy, and goes on with the next entries."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaConnectionError

from llmts_common.contracts import GenerationRequested, ModelRef, Prompts, TemplateSnapshot
from llmts_common.envelope import Envelope
from llmts_common.kafka import EventPublisher, create_broker
from llmts_common.kafka_security import faststream_security, kafka_client_options
from llmts_common.mongo import Database
from llmts_common.outbox import Outbox
from llmts_common.settings import KafkaSettings


def _requested(job_id: str, *, prompt: str = "hi") -> GenerationRequested:
    return GenerationRequested(
        job_id=job_id,
        user_id="u1",
        template=TemplateSnapshot(
            id="t",
            version=1,
            name="n",
            owner_id="u1",
            prompts=Prompts(user=prompt),
            schema={"type": "object"},
        ),
        model=ModelRef(provider="openrouter", id="openai/gpt-4o-mini"),
        count=1,
        requested_at=datetime.now(UTC),
    )


class FlakyPublisher(EventPublisher):
    """Publishes to memory; envelopes whose id is in ``failing`` raise a transient Kafka error."""

    def __init__(self, failing: set[str]) -> None:
        super().__init__(create_broker("127.0.0.1:9", client_id="outbox-flaky"), source="gateway")
        self.failing = failing
        self.sent: list[str] = []

    async def publish_envelope(self, envelope: Envelope, topic: str) -> None:
        if envelope.id in self.failing:
            raise KafkaConnectionError("connection reset")
        self.sent.append(envelope.id)


async def _add(outbox: Outbox, job_id: str, topic: str, **kw: Any) -> None:
    await outbox.add(_requested(job_id, **kw), message_id=job_id, topic=topic)


async def _read(bootstrap: str, topic: str, expect: int, within: float = 20.0) -> list[str]:
    consumer = AIOKafkaConsumer(
        topic,
        **kafka_client_options(KafkaSettings(kafka_bootstrap_servers=bootstrap)),
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    ids: list[str] = []
    try:
        deadline = asyncio.get_running_loop().time() + within
        while len(ids) < expect and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                ids.extend(Envelope.model_validate_json(r.value).id for r in records)
    finally:
        await consumer.stop()
    return ids


async def test_an_oversized_command_is_parked_and_the_rest_go_out_through_kafka(
    db: Database, kafka_bootstrap: str, unique_topic: str
) -> None:
    broker = create_broker(kafka_bootstrap, client_id="outbox-relay-test", security=faststream_security())
    await broker.start()
    try:
        # the pre-check is lifted above Kafka's limit for one outbox, so the real producer refuses the record
        for outbox, label in (
            (Outbox(db[Outbox.COLLECTION], EventPublisher(broker, source="gateway")), "pre-check"),
            (
                Outbox(db["outbox_raw"], EventPublisher(broker, source="gateway"), max_message_bytes=10**8),
                "kafka",
            ),
        ):
            first, big, last = (uuid.uuid4().hex for _ in range(3))
            await _add(outbox, first, unique_topic)
            await _add(outbox, big, unique_topic, prompt="x" * 1_200_000)
            await _add(outbox, last, unique_topic)
            assert not await outbox.publish_one((await outbox.get(big)).envelope, unique_topic)  # type: ignore[union-attr]
            assert await outbox.relay_once() == 2, label
            parked = await outbox.get(big)
            assert parked is not None
            assert parked.published is False
            assert parked.parked_reason is not None
            assert "MessageSizeTooLarge" in parked.parked_reason or "limit" in parked.parked_reason, label
            assert [m.envelope.id for m in await outbox.parked()] == [big]
            assert await outbox.relay_once() == 0  # parked: never tried again
            for job_id in (first, last):
                stored = await outbox.get(job_id)
                assert stored is not None
                assert stored.published, label
        delivered = await _read(kafka_bootstrap, unique_topic, expect=4)
        assert len(delivered) == 4
    finally:
        await broker.stop()


async def test_a_failing_entry_is_skipped_with_backoff_then_parked_while_kafka_is_healthy(
    db: Database,
) -> None:
    bad, good = uuid.uuid4().hex, uuid.uuid4().hex
    publisher = FlakyPublisher({bad})
    outbox = Outbox(db[Outbox.COLLECTION], publisher, max_attempts=3)
    await _add(outbox, bad, "t")
    await _add(outbox, good, "t")
    assert await outbox.relay_once() == 1  # the oldest entry failing does not hold back the next one
    assert publisher.sent == [good]
    doc = await db[Outbox.COLLECTION].find_one({"_id": bad})
    assert doc is not None
    assert doc["attempts"] == 1
    assert "KafkaConnectionError" in doc["last_error"]
    assert await outbox.relay_once() == 0  # backing off: not due yet
    for attempt in (2, 3):
        await db[Outbox.COLLECTION].update_one({"_id": bad}, {"$unset": {"next_attempt_at": ""}})
        await outbox.relay_once()
        doc = await db[Outbox.COLLECTION].find_one({"_id": bad})
        assert doc is not None
        assert doc["attempts"] == attempt
    stored = await outbox.get(bad)
    assert stored is not None
    assert stored.parked_reason is not None
    assert "not published after 3 attempts" in stored.parked_reason


async def test_a_kafka_outage_parks_nothing(db: Database) -> None:
    ids = [uuid.uuid4().hex for _ in range(3)]
    publisher = FlakyPublisher(set(ids))
    outbox = Outbox(db[Outbox.COLLECTION], publisher, max_attempts=2)
    for job_id in ids:
        await _add(outbox, job_id, "t")
    for _ in range(4):  # no publish has succeeded: the broker is not known healthy, failures are not counted
        await db[Outbox.COLLECTION].update_many({}, {"$unset": {"next_attempt_at": ""}})
        assert await outbox.relay_once() == 0
    assert await outbox.parked() == []
    publisher.failing.clear()  # Kafka is back
    await db[Outbox.COLLECTION].update_many({}, {"$unset": {"next_attempt_at": ""}})
    assert await outbox.relay_once() == 3
    assert publisher.sent == ids


async def test_the_park_hook_hears_of_each_parked_entry_and_again_after_a_restart(db: Database) -> None:
    heard: list[tuple[str, str | None]] = []

    async def on_park(stored: Any) -> None:
        heard.append((stored.envelope.id, stored.parked_reason))

    col = db[f"outbox_hook_{uuid.uuid4().hex[:8]}"]
    outbox = Outbox(col, FlakyPublisher(set()), on_park=on_park)
    ok, big = uuid.uuid4().hex, uuid.uuid4().hex
    await _add(outbox, ok, "t")
    await _add(outbox, big, "t", prompt="x" * 1_200_000)
    assert await outbox.relay_once() == 1
    assert [job for job, _ in heard] == [big]
    assert heard[0][1] is not None
    assert "limit" in heard[0][1]
    restarted = Outbox(col, FlakyPublisher(set()), on_park=on_park)  # a crash between parking and the hook
    assert await restarted.replay_parked() == 1
    assert [job for job, _ in heard] == [big, big]
