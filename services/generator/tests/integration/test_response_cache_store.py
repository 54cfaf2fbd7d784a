"""The response cache and the round writes on the local MongoDB-wire server: buffered writes made durable by
``flush``, ``refresh`` overwriting, per-user keys, expiry (never read after ``expires_at``) and the purge (expired
entries, a user's oldest beyond the bound), the user's erasure; a round opens only on the job as read, and item
attempts are counted per target for the next item seeds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from services.generator.tests.integration.conftest import MONGO_URL

from llmts_common.mongo import Database, create_client, ensure_indexes
from llmts_generator.adapters.cache import MongoResponseCache
from llmts_generator.adapters.repository import MongoGenerationRepository
from llmts_generator.domain.caching import CachedAnswer


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    client: Any = create_client(MONGO_URL, server_selection_timeout_ms=10_000)
    name = f"llmts_cache_it_{uuid.uuid4().hex[:10]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


def answer(text: str, cost: float = 0.001) -> CachedAnswer:
    return CachedAnswer(text, "stop", 10, 5, cost, "openai/gpt-4o-mini", "openrouter")


async def test_writes_are_durable_after_flush_per_user_and_refresh_overwrites(db: Database) -> None:
    clock = Clock()
    cache = MongoResponseCache(db, ttl=timedelta(days=1), max_entries_per_user=100, clock=clock)
    await ensure_indexes(db, cache.indexes())
    cache.put("u1", "k1", answer("first"))
    await cache.flush()
    reader = MongoResponseCache(db, ttl=timedelta(days=1), max_entries_per_user=100, clock=clock)

    assert await reader.get("u1", "k1") == answer("first")
    assert await reader.get("u2", "k1") is None  # keys are per user

    cache.put("u1", "k1", answer("second", cost=0.002))
    await cache.flush()
    assert await reader.get("u1", "k1") == answer("second", cost=0.002)
    assert await db["response_cache"].count_documents({}) == 1


async def test_expired_entries_are_not_read_and_the_purge_bounds_each_user(db: Database) -> None:
    clock = Clock()
    cache = MongoResponseCache(db, ttl=timedelta(hours=1), max_entries_per_user=3, clock=clock)
    cache.put("u1", "old", answer("old"))
    await cache.flush()
    clock.now += timedelta(minutes=30)
    for n in range(4):
        cache.put("u1", f"k{n}", answer(f"a{n}"))
        clock.now += timedelta(seconds=1)
    cache.put("u2", "k0", answer("b0"))
    await cache.flush()
    clock.now += timedelta(minutes=31)  # "old" expired, the others not

    assert await cache.get("u1", "old") is None
    removed = await cache.purge()

    assert removed == 2  # the expired entry, then u1's oldest beyond 3
    left = sorted([d["key"] async for d in db["response_cache"].find({"user_id": "u1"})])
    assert left == ["k1", "k2", "k3"]
    assert await cache.get("u2", "k0") == answer("b0")
    assert await cache.erase_user("u1") == 3
    assert await db["response_cache"].count_documents({}) == 1


async def test_a_round_opens_only_on_the_job_as_read_and_attempts_are_counted_per_target(
    db: Database,
) -> None:
    repo = MongoGenerationRepository(db)
    doc = {"_id": "j1", "status": "cancelled", "settled": True, "round": 1}
    await db["generations"].insert_one(dict(doc))
    update = {"$set": {"status": "queued", "settled": False, "round": 2}, "$push": {"rounds": {"round": 2}}}

    assert await repo.reopen(doc, update)
    assert not await repo.reopen(doc, update)  # the job changed meanwhile: no second round from the same read
    stored = await db["generations"].find_one({"_id": "j1"})
    assert stored is not None
    assert (stored["status"], stored["round"], stored["rounds"]) == ("queued", 2, [{"round": 2}])

    await db["attempts"].insert_many(
        [
            {"_id": "j1:0:1", "job_id": "j1", "target": 0, "item_attempt_done": 1},
            {"_id": "j1:0:2", "job_id": "j1", "target": 0, "item_attempt_done": 0},  # a retried call
            {"_id": "j1:1:1", "job_id": "j1", "target": 0, "item_attempt_done": 1},
            {"_id": "j1:2:1", "job_id": "j1", "target": 3, "item_attempt_done": 1},
        ]
    )
    assert await repo.item_attempts_by_target("j1") == {0: 2, 3: 1}


async def test_concurrent_reads_are_answered_each_with_its_own_entry(db: Database) -> None:
    """Reads asked at once are sent as one query; each gets its own answer (or None: unknown, another user's,
    expired)."""
    clock = Clock()
    cache = MongoResponseCache(db, ttl=timedelta(hours=1), max_entries_per_user=1000, clock=clock)
    for n in range(40):
        cache.put("u1", f"k{n}", answer(f"a{n}"))
    await cache.flush()
    clock.now += timedelta(minutes=30)
    cache.put("u1", "late", answer("late"))
    await cache.flush()
    clock.now += timedelta(minutes=45)  # k0..k39 expired, "late" not
    fresh = MongoResponseCache(db, ttl=timedelta(hours=1), max_entries_per_user=1000, clock=clock)
    clock.now -= timedelta(minutes=45)

    got = await asyncio.gather(*(fresh.get("u1", f"k{n}") for n in range(40)), fresh.get("u2", "k1"))

    assert got[:40] == [answer(f"a{n}") for n in range(40)]
    many = await fresh.get_many("u1", [f"k{n}" for n in range(0, 40, 10)] + ["nope"])
    assert many == {f"k{n}": answer(f"a{n}") for n in range(0, 40, 10)}
    assert await fresh.get_many("u2", ["k0"]) == {}
    assert got[40] is None
    clock.now += timedelta(minutes=45)
    assert await asyncio.gather(fresh.get("u1", "k3"), fresh.get("u1", "late")) == [None, answer("late")]


async def test_a_users_flush_writes_only_that_users_entries(db: Database) -> None:
    """A job's end flushes its user's answers alone: the other users' buffered entries stay for the periodic flush
    (a small job must not wait for another user's large backlog to be written)."""
    clock = Clock()
    cache = MongoResponseCache(db, ttl=timedelta(days=1), max_entries_per_user=100, clock=clock)
    for n in range(50):
        cache.put("busy", f"k{n}", answer(f"a{n}"))
    cache.put("small", "k0", answer("mine"))
    await cache.flush("small")
    reader = MongoResponseCache(db, ttl=timedelta(days=1), max_entries_per_user=100, clock=clock)
    assert await reader.get("small", "k0") == answer("mine")
    assert await db["response_cache"].count_documents({"user_id": "busy"}) == 0
    await cache.flush()
    assert await db["response_cache"].count_documents({"user_id": "busy"}) == 50
