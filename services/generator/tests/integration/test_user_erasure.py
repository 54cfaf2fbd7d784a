"""The generator's Mongo erasure of a deleted user (real MongoDB-wire server, a database of its own)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.support.erasure import temp_db

from llmts_generator.adapters.cache import MongoResponseCache
from llmts_generator.adapters.erasure import MongoUserErasure
from llmts_generator.adapters.repository import ATTEMPTS, ITEMS, JOBS
from llmts_generator.domain.caching import CachedAnswer

pytestmark = pytest.mark.connected

_ANSWER = CachedAnswer("{}", "stop", 1, 1, 0.001, "m", "openrouter")


async def test_erases_only_that_users_jobs_items_and_attempts() -> None:
    async with temp_db("generator_erase") as db:
        await db[JOBS].insert_many(
            [
                {"_id": "a1", "user_id": "ann", "status": "running"},
                {"_id": "a2", "user_id": "ann", "status": "completed"},
                {"_id": "b1", "user_id": "bob", "status": "running"},
            ]
        )
        await db[ITEMS].insert_many([{"job_id": j, "index": i} for j in ("a1", "a2", "b1") for i in range(3)])
        await db[ATTEMPTS].insert_many([{"job_id": j, "slot": 0, "call": 0} for j in ("a1", "b1")])
        cache = MongoResponseCache(db, ttl=timedelta(days=1), max_entries_per_user=10)
        for user in ("ann", "ann", "bob"):
            cache.put(user, f"k-{user}-{await db[JOBS].count_documents({})}", _ANSWER)
        cache.put("ann", "k2", _ANSWER)
        await cache.flush()
        erasure = MongoUserErasure(db, cache)
        assert await erasure.active_jobs("ann") == ["a1"]
        assert await erasure.erase("ann") == {"jobs": 2, "items": 6, "attempts": 1, "cached_answers": 2}
        assert await erasure.erase("ann") == {"jobs": 0, "items": 0, "attempts": 0, "cached_answers": 0}
        assert await cache.get("bob", "k-bob-3") == _ANSWER
        assert await db[JOBS].count_documents({}) == 1
        assert await db[ITEMS].count_documents({"job_id": "b1"}) == 3
        assert await db[ATTEMPTS].count_documents({"job_id": "b1"}) == 1
