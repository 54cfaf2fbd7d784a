"""Every dead-lettered message is counted (llmts_kafka_dead_letters_total), for the LlmtsDeadLetters alert."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from prometheus_client import REGISTRY

from llmts_common.kafka import EventPublisher, _Dispatcher, create_broker


class RecordingPublisher(EventPublisher):
    def __init__(self) -> None:
        super().__init__(create_broker("127.0.0.1:9", client_id="dlq-metric"), source="test")
        self.raw: list[tuple[str, dict[str, str]]] = []

    async def publish_raw(self, body: bytes, *, topic: str, key: Any = None, headers: Any = None) -> None:
        self.raw.append((topic, dict(headers or {})))


def _count(topic: str, consumer: str) -> float:
    return (
        REGISTRY.get_sample_value("llmts_kafka_dead_letters_total", {"topic": topic, "consumer": consumer})
        or 0.0
    )


async def test_a_poison_message_is_dead_lettered_and_counted() -> None:
    publisher = RecordingPublisher()
    dispatcher = _Dispatcher(
        topic="metric.test.commands",
        name="metric-consumer",
        by_type={},
        publisher=publisher,
        processed=None,
        max_attempts=3,
        committer=None,
    )
    before = _count("metric.test.commands", "metric-consumer")
    record = SimpleNamespace(headers=[], partition=0, offset=7, key=b"k")
    await dispatcher.handle(SimpleNamespace(body=b"not an envelope", raw_message=record))
    assert [topic for topic, _ in publisher.raw] == ["metric.test.commands.dlq"]
    assert _count("metric.test.commands", "metric-consumer") == before + 1
