"""Kafka away: the outbox accepts without waiting, the relay does not wait per entry, a service starts and serves
without Kafka and waits for its database instead of exiting (issue 16)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr
from pymongo.errors import ServerSelectionTimeoutError

from llmts_common import runtime as runtime_mod
from llmts_common.contracts import GenerationRequested, ModelRef, Prompts, TemplateSnapshot
from llmts_common.envelope import Envelope
from llmts_common.kafka import EventPublisher, create_broker
from llmts_common.mongo import Database
from llmts_common.outbox import OUTBOX_FIELD, EmbeddedOutbox, Outbox
from llmts_common.runtime import ServiceRuntime
from llmts_common.settings import BaseServiceSettings

from .conftest import KAFKA, MONGO_URL


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


class StalledPublisher(EventPublisher):
    """Like aiokafka while the broker is away: a publish waits (for metadata) until ``healed`` is set."""

    def __init__(self) -> None:
        super().__init__(create_broker("127.0.0.1:9", client_id="outbox-stalled"), source="gateway")
        self.healed = asyncio.Event()
        self.calls = 0
        self.sent: list[str] = []

    async def publish_envelope(self, envelope: Envelope, topic: str) -> None:
        self.calls += 1
        await self.healed.wait()
        self.sent.append(envelope.id)


async def test_accepting_a_command_does_not_wait_for_an_absent_kafka(db: Database) -> None:
    publisher = StalledPublisher()
    outbox = Outbox(db[Outbox.COLLECTION], publisher, publish_timeout_s=0.3)
    ids = [uuid.uuid4().hex for _ in range(3)]
    envelope = await outbox.add(_requested(ids[0]), message_id=ids[0])
    t0 = time.monotonic()
    assert await outbox.publish_one(envelope, "t") is False
    assert time.monotonic() - t0 < 1.5  # not aiokafka's 30 s
    for job_id in ids[1:]:  # the fast path is paused: these do not even try
        envelope = await outbox.add(_requested(job_id), message_id=job_id)
        t1 = time.monotonic()
        assert await outbox.publish_one(envelope, "t") is False
        assert time.monotonic() - t1 < 0.1
    assert publisher.calls == 1

    t0 = time.monotonic()
    assert await outbox.relay_once() == 0
    assert time.monotonic() - t0 < 1.5  # one timeout, not one per entry
    assert publisher.calls == 2
    for job_id in ids:
        stored = await outbox.get(job_id)
        assert stored is not None
        assert stored.published is False
        assert stored.parked_reason is None
    doc = await db[Outbox.COLLECTION].find_one({"_id": ids[0]})
    assert doc is not None
    assert doc["attempts"] == 0  # an outage is not the entry's fault
    assert "did not answer" in doc["last_error"]

    publisher.healed.set()
    await db[Outbox.COLLECTION].update_many({}, {"$unset": {"next_attempt_at": ""}})
    assert await outbox.relay_once() == 3
    assert sorted(publisher.sent) == sorted(ids)
    assert await outbox.publish_one(await outbox.add(_requested("after"), message_id="after"), "t")


def _settings(**kw: Any) -> BaseServiceSettings:
    base: dict[str, Any] = {
        "service_name": "outage-test",
        "mongo_url": SecretStr(MONGO_URL),
        "mongo_db": f"llmts_outage_{uuid.uuid4().hex[:8]}",
        "kafka_bootstrap_servers": "127.0.0.1:9",  # nothing listens there
        "log_json": False,
    }
    return BaseServiceSettings(**{**base, **kw})


async def test_a_service_starts_and_serves_without_kafka_and_keeps_connecting() -> None:
    ticks: list[str] = []

    async def task(stop: asyncio.Event) -> None:
        ticks.append("ran")
        await stop.wait()

    for serve_without_kafka in (True, False):
        rt = ServiceRuntime(
            _settings(),
            configure_process=False,
            serve_without_kafka=serve_without_kafka,
            start_wait_s=0.5,
        )
        rt.add_background("t", task)
        ticks.clear()
        t0 = time.monotonic()
        await rt.start()
        try:
            assert time.monotonic() - t0 < 5
            await asyncio.sleep(0.2)
            assert ticks == (["ran"] if serve_without_kafka else [])
            assert await rt.startup_ready() == {"ready": True}
            kafka = await rt.kafka_ready()
            assert kafka["ready"] is False
            assert kafka["required"] is False
            assert rt._setup_task is not None
            assert not rt._setup_task.done()  # still trying in the background
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await rt.wait_for_kafka()
            assert not rt._setup_task.done()  # the wait gave up, the connecting goes on
        finally:
            t1 = time.monotonic()
            await rt.mongo.drop_database(rt.settings.database_name)
            await rt.stop()
            assert time.monotonic() - t1 < 10


async def test_start_waits_for_the_database_beyond_the_old_30_attempts(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(runtime_mod, "retry_delay", lambda attempt: 0.0)

    calls = 0
    forty = asyncio.Event()

    async def unreachable(*_: Any) -> None:  # what index creation raises while the server is away
        nonlocal calls
        calls += 1
        if calls == 40:
            forty.set()
        raise ServerSelectionTimeoutError("127.0.0.1:9: connection refused")

    monkeypatch.setattr(runtime_mod, "ensure_indexes", unreachable)
    rt = ServiceRuntime(_settings(mongo_url=SecretStr("mongodb://127.0.0.1:9")), configure_process=False)
    caplog.set_level(logging.WARNING, logger="llmts.runtime")
    start = asyncio.create_task(rt.start())
    try:
        await asyncio.wait_for(forty.wait(), timeout=20)  # the old start gave up after 30
        await asyncio.sleep(0.05)
        assert not start.done()  # still waiting, never exited
        assert len(caplog.records) >= 40
        assert "mongo not reachable yet" in caplog.records[0].getMessage()
        assert await rt.startup_ready() == {"ready": False}
    finally:
        rt.stopping.set()
        with pytest.raises(asyncio.CancelledError):
            await start
        await rt.stop()


async def test_the_embedded_outbox_relay_does_not_wait_per_document_for_an_absent_kafka(db: Database) -> None:
    publisher = StalledPublisher()
    relay = EmbeddedOutbox([db["aggregates"]], publisher, publish_timeout_s=0.3)
    docs = [{"_id": f"agg-{i}", OUTBOX_FIELD: [relay.entry(_requested(f"job-{i}"))]} for i in range(5)]
    await db["aggregates"].insert_many(docs)
    t0 = time.monotonic()
    assert await relay.relay_once() == 0
    assert time.monotonic() - t0 < 1.5  # one timeout, not one per document (5 x 30 s with aiokafka)
    assert publisher.calls == 1
    publisher.healed.set()
    assert await relay.relay_once() == 5
    assert await db["aggregates"].count_documents({f"{OUTBOX_FIELD}.0": {"$exists": True}}) == 0


async def test_serve_before_mongo_starts_at_once_and_becomes_ready_when_the_database_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime_mod, "retry_delay", lambda attempt: 0.05)
    back = asyncio.Event()
    real_ensure = runtime_mod.ensure_indexes

    async def flaky(db: Database, specs: Any) -> None:
        if not back.is_set():
            raise ServerSelectionTimeoutError("127.0.0.1:27017: connection refused")
        await real_ensure(db, specs)

    monkeypatch.setattr(runtime_mod, "ensure_indexes", flaky)
    rt = ServiceRuntime(
        _settings(kafka_bootstrap_servers=KAFKA),
        configure_process=False,
        serve_before_mongo=True,
        serve_without_kafka=True,
        start_wait_s=0.3,
    )
    ran = asyncio.Event()

    async def task(stop: asyncio.Event) -> None:
        ran.set()
        await stop.wait()

    rt.add_background("t", task)
    t0 = time.monotonic()
    await rt.start()
    try:
        assert time.monotonic() - t0 < 2  # the HTTP server (liveness) comes up without the database
        assert await rt.startup_ready() == {"ready": False}  # unready until it answers
        assert not ran.is_set()
        back.set()
        await asyncio.wait_for(ran.wait(), timeout=10)
        assert await rt.startup_ready() == {"ready": True}
        async with asyncio.timeout(30):
            await rt.wait_for_kafka()
        assert rt.kafka_connected
    finally:
        await rt.mongo.drop_database(rt.settings.database_name)
        await rt.stop()
