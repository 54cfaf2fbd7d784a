"""Test helpers of the generator: tokens (from ``tests.support.tokens``), a Kafka event tap, command builders."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from joserfc.jwk import OKPKey
from tests.support.tokens import access_token

from llmts_common.contracts import GenerationRequested, ModelRef, TemplateSnapshot, topics
from llmts_common.kafka_security import kafka_client_options
from llmts_common.settings import KafkaSettings

MODEL = "openai/gpt-4o-mini"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 3},
        "rating": {"type": "integer", "minimum": 1, "maximum": 5},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    "required": ["title", "rating", "tags"],
    "additionalProperties": False,
}


def token_maker(key: OKPKey) -> Callable[[str], str]:
    def make(user_id: str) -> str:
        return access_token(key, user_id)

    return make


def template(**over: Any) -> TemplateSnapshot:
    data: dict[str, Any] = {
        "id": f"tpl-{uuid.uuid4().hex[:6]}",
        "version": 1,
        "name": "Reviews",
        "owner_id": "owner",
        "output_format": "json",
        "prompts": {"system": "You write product reviews.", "user": "Write review number {{ index }}."},
        "schema": SCHEMA,
        "validation": {"mode": "strict", "rules": []},
    }
    data.update(over)
    return TemplateSnapshot.model_validate(data)


def command(user_id: str, count: int = 5, **over: Any) -> GenerationRequested:
    tpl = over.pop("template", None) or template()
    data: dict[str, Any] = {
        "job_id": uuid.uuid4().hex,
        "user_id": user_id,
        "template": tpl,
        "model": ModelRef(provider="openrouter", id=MODEL),
        "count": count,
        "requested_at": datetime.now(UTC),
        "concurrency": 4,
    }
    data.update(over)
    return GenerationRequested.model_validate(data)


class EventTap:
    """Reads generation.events from the offsets current at start (manual assignment: no group, no
    rebalance), keeping every envelope by job id."""

    def __init__(self, bootstrap: str, topic: str = topics.GENERATION_EVENTS) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.by_job: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def start(self) -> None:
        await ensure_topic(self.bootstrap, self.topic)
        producer = AIOKafkaProducer(
            **kafka_client_options(KafkaSettings(kafka_bootstrap_servers=self.bootstrap))
        )
        await producer.start()
        try:
            parts = await producer.partitions_for(self.topic)
        finally:
            await producer.stop()
        assert parts, f"topic {self.topic} has no partitions"
        consumer = AIOKafkaConsumer(
            **kafka_client_options(KafkaSettings(kafka_bootstrap_servers=self.bootstrap)),
            enable_auto_commit=False,
        )
        await consumer.start()
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)
        self._consumer = consumer
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for rec in records:
                    try:
                        env = json.loads(rec.value)
                    except ValueError:
                        continue
                    job_id = (env.get("data") or {}).get("job_id")
                    if isinstance(job_id, str):
                        self.by_job[job_id].append(env)
                        self._changed.set()

    def events(self, job_id: str, type_suffix: str | None = None) -> list[dict[str, Any]]:
        evs = self.by_job.get(job_id, [])
        if type_suffix is None:
            return list(evs)
        return [e for e in evs if e["type"].endswith(type_suffix)]

    async def wait_for(
        self, job_id: str, predicate: Callable[[list[dict[str, Any]]], bool], within: float
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + within
        while True:
            evs = self.events(job_id)
            if predicate(evs):
                return evs
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"events of {job_id}: {[e['type'] for e in evs]}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()


async def ensure_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(**kafka_client_options(KafkaSettings(kafka_bootstrap_servers=bootstrap)))
    await admin.start()
    try:
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()


TERMINAL_TYPES = ("completed", "failed", "cancelled")


def has_terminal(evs: list[dict[str, Any]]) -> bool:
    return any(e["type"].rsplit(".", 1)[-1] in TERMINAL_TYPES for e in evs)
