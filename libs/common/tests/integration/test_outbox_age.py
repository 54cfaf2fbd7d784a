"""The outbox's age gauge: how long the oldest entry still to publish has waited (the `LlmtsOutboxStuck` alert)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiokafka.errors import KafkaConnectionError
from prometheus_client import REGISTRY

from llmts_common.contracts import GenerationRequested, ModelRef, Prompts, TemplateSnapshot
from llmts_common.envelope import Envelope
from llmts_common.kafka import EventPublisher, create_broker
from llmts_common.mongo import Database
from llmts_common.outbox import Outbox


class SwitchPublisher(EventPublisher):
    """Publishes to memory, or fails like an unreachable Kafka while ``down``."""

    def __init__(self) -> None:
        super().__init__(create_broker("127.0.0.1:9", client_id="outbox-age"), source="gateway")
        self.down = True
        self.sent: list[str] = []

    async def publish_envelope(self, envelope: Envelope, topic: str) -> None:
        if self.down:
            raise KafkaConnectionError("connection refused")
        self.sent.append(envelope.id)


def _requested(job_id: str) -> GenerationRequested:
    return GenerationRequested(
        job_id=job_id,
        user_id="u1",
        template=TemplateSnapshot(
            id="t", version=1, name="n", owner_id="u1", prompts=Prompts(user="hi"), schema={"type": "object"}
        ),
        model=ModelRef(provider="openrouter", id="openai/gpt-4o-mini"),
        count=1,
        requested_at=datetime.now(UTC),
    )


def _gauge(collection: str) -> float | None:
    return REGISTRY.get_sample_value("llmts_outbox_oldest_unpublished_seconds", {"collection": collection})


async def test_the_age_of_the_oldest_waiting_entry_is_measured(db: Database) -> None:
    col = db["outbox_age"]
    publisher = SwitchPublisher()
    outbox = Outbox(col, publisher, max_attempts=100)
    assert await outbox.oldest_unpublished_age() == 0.0
    assert _gauge("outbox_age") == 0.0

    for job in ("j-old", "j-new"):
        await outbox.add(_requested(job), message_id=job, topic="generation.commands")
    await col.update_one(
        {"_id": "j-old"}, {"$set": {"created_at": datetime.now(UTC) - timedelta(minutes=10)}}
    )
    assert await outbox.relay_once() == 0  # Kafka away: nothing goes out, the wait is visible
    gauge = _gauge("outbox_age")
    assert gauge is not None
    assert 600 <= gauge < 660

    await col.update_one(
        {"_id": "j-old"}, {"$set": {"parked": True}}
    )  # parked: reported elsewhere, not waiting
    age = await outbox.oldest_unpublished_age()
    assert 0 <= age < 60

    publisher.down = False
    await col.update_many({}, {"$unset": {"next_attempt_at": ""}})
    assert await outbox.relay_once() == 1
    assert publisher.sent == ["j-new"]
    assert _gauge("outbox_age") == 0.0
