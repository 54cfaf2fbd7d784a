"""Crash safety: abrupt runner death, journal replay, and kill -9 of a real generator process."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from services.generator.tests.integration.conftest import KAFKA, MONGO_URL, Harness
from services.generator.tests.integration.test_generation_jobs import assert_consistent, items_of
from services.generator.tests.support import command, ensure_topic
from tests.fakes.fixtures import OPENROUTER_TEST_KEY
from tests.support.net import free_port
from tests.support.serve import ServiceProcess

from llmts_common.kafka import EventPublisher, create_broker
from llmts_common.kafka_security import faststream_security
from llmts_common.mongo import create_client
from llmts_generator.adapters.repository import EPOCH
from llmts_generator.domain.ports import item_id
from llmts_generator.handlers import new_job_document


def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


async def test_abrupt_runner_death_is_resumed(h: Harness) -> None:
    owner = user()
    h.fake.configure(latency_ms=60)
    msg = command(owner, count=30, concurrency=3)
    await h.submit(msg)
    await h.wait_status(msg.job_id, lambda d: d["counts"]["succeeded"] >= 8, within=20)
    entry = h.gen.manager.running[msg.job_id]
    entry.task.cancel()  # no terminal write, no lease release: like a process that died
    await asyncio.gather(entry.task, return_exceptions=True)
    doc = await h.job(msg.job_id)
    assert doc is not None
    assert doc["status"] == "running"
    assert doc["lease_until"] > datetime.now(UTC)  # still leased: resume waits for expiry
    doc = await h.wait_status(msg.job_id, lambda d: d["status"] == "completed" and d["settled"], within=30)
    assert doc["run"] == 2
    await h.tap.wait_for(msg.job_id, lambda evs: any(e["type"].endswith("completed") for e in evs), 10)
    await assert_consistent(h, msg.job_id, owner, 30)


async def test_unpublished_items_are_republished_once_and_counters_recomputed(h: Harness) -> None:
    """A previous owner stored item 0 and its attempt (plus an attempt that bought nothing) but died before
    publishing: the job document still says nothing was published and its counters are stale. The next owner
    must publish item 0's event with its stored envelope id, recompute the totals from ``attempts`` (each billed
    once), continue at index 1 and end with exactly N."""
    from llmts_templating.validation import content_hash

    owner = user()
    msg = command(owner, count=3, concurrency=1)
    now = datetime.now(UTC)
    doc = new_job_document(msg, now)
    value = {"title": "replayed item", "rating": 3, "tags": []}
    event_id = uuid.uuid4().hex
    item = {
        "_id": item_id(msg.job_id, 0),
        "job_id": msg.job_id,
        "user_id": owner,
        "index": 0,
        "status": "accepted",
        "target": 0,
        "task_index": 0,
        "slot": 1,
        "data_json": json.dumps(value),
        "content_hash": content_hash(value),
        "attempts": 1,
        "calls": 1,
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "cost_usd": 0.001},
        "event_id": event_id,
        "created_at": now,
    }
    base = {"job_id": msg.job_id, "user_id": owner, "completion_tokens": 5, "prompt_tokens": 10}
    attempts = [
        {
            **base,
            "_id": f"{msg.job_id}:0:1",
            "slot": 0,
            "call": 1,
            "outcome": "retried",
            "item_attempt_done": 0,
            "cost_usd": 0.002,
        },
        {
            **base,
            "_id": f"{msg.job_id}:1:1",
            "slot": 1,
            "call": 1,
            "outcome": "valid",
            "item_attempt_done": 1,
            "cost_usd": 0.001,
        },
    ]
    doc.update(
        {
            "status": "running",
            "started_at": now,
            "run": 1,
            "lease_owner": "dead-process",
            "lease_until": EPOCH,
            "counts": {"succeeded": 0, "rejected": 0, "attempts": 7, "item_attempts": 0},  # a stale cache
        }
    )
    await h.gen.repo.attempts.insert_many(attempts)
    await h.gen.repo.items.insert_one(item)
    await h.gen.repo.jobs.insert_one(doc)
    await h.gen.manager.sweep_once()
    done = await h.wait_status(msg.job_id, lambda d: d["status"] == "completed" and d["settled"], within=20)
    assert done["counts"]["succeeded"] == 3
    items = await items_of(h, msg.job_id, owner)
    assert [i["index"] for i in items] == [0, 1, 2]
    assert items[0]["data"] == value
    await h.tap.wait_for(msg.job_id, lambda evs: any(e["type"].endswith("completed") for e in evs), 10)
    generated = h.tap.events(msg.job_id, "item_generated")
    assert [e["data"]["index"] for e in generated] == [0, 1, 2]
    assert generated[0]["id"] == event_id  # the stored envelope id: consumers deduplicate a replay
    stored = [a async for a in h.gen.repo.attempts.find({"job_id": msg.job_id})]
    assert len(stored) == done["counts"]["attempts"] == 4
    assert done["usage"]["cost_usd"] == pytest.approx(sum(a["cost_usd"] for a in stored))
    assert (
        min(a["slot"] for a in stored if a["_id"] not in {x["_id"] for x in attempts}) >= 2
    )  # no slot reused


@pytest.fixture
def proc_env(h: Harness, tmp_path: Path) -> tuple[dict[str, str], str, str]:
    sid = uuid.uuid4().hex[:8]
    topic = f"test.generation.commands.kill.{sid}"
    db = f"llmts_generator_kill_{sid}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGO_DB", "KAFKA_GROUP", "OTEL_"))}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "GENERATOR_PORT": str(free_port()),
            "MONGO_URL": MONGO_URL,
            "MONGO_DB": db,
            "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
            "KAFKA_GROUP_ID": f"llmts-generator-kill-{sid}",
            "COMMANDS_TOPIC": topic,
            "OPENROUTER_BASE_URL": h.fake.base_url,
            "OPENROUTER_API_KEY": OPENROUTER_TEST_KEY,
            "LEASE_TTL_SECONDS": "3",
            "LEASE_RENEW_SECONDS": "0.5",
            "SWEEP_INTERVAL_SECONDS": "0.5",
            "LOG_JSON": "false",
            "LOG_LEVEL": "INFO",
        }
    )
    return env, topic, db


async def test_kill_9_then_restart_completes_exactly_n(
    h: Harness, proc_env: tuple[dict[str, str], str, str], tmp_path: Path
) -> None:
    env, topic, db_name = proc_env
    await ensure_topic(KAFKA, topic)
    h.fake.configure(latency_ms=50)
    owner = user()
    n = 40
    msg = command(owner, count=n, concurrency=4)
    log = tmp_path / "generator.log"
    proc = ServiceProcess("llmts_generator", env, log)
    client = create_client(MONGO_URL)
    db = client[db_name]
    broker = create_broker(
        KAFKA, client_id=f"kill-test-{uuid.uuid4().hex[:6]}", security=faststream_security()
    )
    await broker.start()
    try:
        proc.start()
        publisher = EventPublisher(broker, source="test")
        await publisher.publish_envelope(publisher.envelope_for(msg), topic)

        async def job() -> dict[str, Any] | None:
            return await db["generations"].find_one({"_id": msg.job_id})

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            d = await job()
            if d and d["counts"]["succeeded"] >= 12:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"no progress before kill; log:\n{log.read_text()[-3000:]}")
        proc.kill9()
        killed = await job()
        assert killed is not None
        assert killed["status"] == "running"
        assert killed["counts"]["succeeded"] < n
        proc.start()
        deadline = time.monotonic() + 60
        done: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            done = await job()
            if done and done["status"] == "completed" and done.get("settled"):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(
                f"not completed after restart: {done and done['counts']}\n{log.read_text()[-3000:]}"
            )
        assert done["run"] >= 2
        items = [
            d async for d in db["items"].find({"job_id": msg.job_id, "status": "accepted"}).sort("index", 1)
        ]
        assert [i["index"] for i in items] == list(range(n))
        assert len({i["content_hash"] for i in items}) == n
        assert len({i["target"] for i in items}) == n
        attempts = [a async for a in db["attempts"].find({"job_id": msg.job_id})]
        assert len(attempts) == done["counts"]["attempts"]
        assert sum(a["cost_usd"] for a in attempts) == pytest.approx(done["usage"]["cost_usd"])
        await h.tap.wait_for(msg.job_id, lambda evs: any(e["type"].endswith("completed") for e in evs), 20)
        generated = h.tap.events(msg.job_id, "item_generated")
        assert {e["data"]["index"] for e in generated} == set(range(n))
        by_index: dict[int, set[str]] = {}
        for e in generated:
            by_index.setdefault(e["data"]["index"], set()).add(e["data"]["content_hash"])
        assert all(len(hashes) == 1 for hashes in by_index.values())  # a replay repeats, never contradicts
    finally:
        proc.stop()
        await broker.stop()
        await client.drop_database(db_name)
        await client.close()
