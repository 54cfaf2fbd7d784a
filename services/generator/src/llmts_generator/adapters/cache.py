"""The response cache on MongoDB: collection ``response_cache``, owned by the generator.

One document per (user, key): ``_id = "<user>:<key>"``, ``user_id``, ``key``, the raw answer (text,
finish_reason), its usage and cost when it was called, ``created_at`` and ``expires_at``. Bounded two ways, both
enforced by :meth:`MongoResponseCache.purge` (run every ``RESPONSE_CACHE_PURGE_INTERVAL_SECONDS``; MongoDB TTL
indexes are not relied on, see ``llmts_common.mongo``): entries older than ``RESPONSE_CACHE_TTL_SECONDS`` are
deleted (and never read after they expire), and a user holding more than
``RESPONSE_CACHE_MAX_ENTRIES_PER_USER`` loses the oldest ones.

Writes are buffered: ``put`` only appends, a flusher task upserts the buffer in one ``bulk_write`` (a replace, so
``refresh`` overwrites), and a job's runner flushes before the job's terminal state, so a job that has ended has
its answers in the cache. A failed flush is logged and dropped (it is a cache).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReplaceOne

from llmts_common.mongo import Collection, Database, IndexSpec
from llmts_generator.domain.caching import CachedAnswer

log = logging.getLogger("llmts.generator.cache")

CACHE = "response_cache"


class MongoResponseCache:
    def __init__(
        self,
        db: Database,
        *,
        ttl: timedelta,
        max_entries_per_user: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.col: Collection = db[CACHE]
        self.ttl = ttl
        self.max_entries_per_user = max_entries_per_user
        self.clock = clock
        self._buffer: dict[str, dict[str, Any]] = {}
        self._lock = asyncio.Lock()

    @staticmethod
    def indexes() -> list[IndexSpec]:
        return [
            IndexSpec(CACHE, [("user_id", 1), ("created_at", 1)], name="user_created"),
            IndexSpec(CACHE, [("expires_at", 1)], name="expires"),
        ]

    async def get(self, user_id: str, key: str) -> CachedAnswer | None:
        doc_id = f"{user_id}:{key}"
        pending = self._buffer.get(doc_id)
        if pending is not None:
            return CachedAnswer.of(pending)
        doc = await self.col.find_one({"_id": doc_id, "expires_at": {"$gt": self.clock()}})
        if doc is None or doc.get("user_id") != user_id:
            return None
        return CachedAnswer.of(doc)

    def put(self, user_id: str, key: str, answer: CachedAnswer) -> None:
        now = self.clock()
        doc_id = f"{user_id}:{key}"
        self._buffer[doc_id] = {
            "_id": doc_id,
            "user_id": user_id,
            "key": key,
            **answer.doc(),
            "created_at": now,
            "expires_at": now + self.ttl,
        }

    async def flush(self) -> None:
        """Upsert what is buffered (one bulk write); errors are logged, the entries dropped."""
        async with self._lock:
            if not self._buffer:
                return
            docs, self._buffer = list(self._buffer.values()), {}
            try:
                await self.col.bulk_write([ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs])
            except Exception as exc:
                log.warning("response cache: %d entr(y/ies) not stored: %s", len(docs), exc)

    async def run_flusher(self, stopping: asyncio.Event, interval_s: float = 0.2) -> None:
        """Background task: flush every ``interval_s`` until stopping, then once more."""
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), interval_s)
            await self.flush()

    async def purge(self) -> int:
        """Delete expired entries and each user's oldest entries beyond the bound; returns how many."""
        removed = (await self.col.delete_many({"expires_at": {"$lte": self.clock()}})).deleted_count
        pipeline: list[dict[str, Any]] = [
            {"$group": {"_id": "$user_id", "n": {"$sum": 1}}},
            {"$match": {"n": {"$gt": self.max_entries_per_user}}},
        ]
        rows = await (await self.col.aggregate(pipeline)).to_list()
        for row in rows:
            extra = int(row["n"]) - self.max_entries_per_user
            cursor = self.col.find({"user_id": row["_id"]}, {"_id": 1}).sort([("created_at", 1)]).limit(extra)
            ids = [d["_id"] async for d in cursor]
            if ids:
                removed += (await self.col.delete_many({"_id": {"$in": ids}})).deleted_count
        return removed

    async def run_purger(self, stopping: asyncio.Event, interval_s: float) -> None:
        """Background task: :meth:`purge` every ``interval_s``."""
        while not stopping.is_set():
            try:
                removed = await self.purge()
                if removed:
                    log.info("response cache: %d entr(y/ies) purged", removed)
            except Exception as exc:
                log.warning("response cache purge failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), interval_s)

    async def erase_user(self, user_id: str) -> int:
        self._buffer = {k: v for k, v in self._buffer.items() if v["user_id"] != user_id}
        return (await self.col.delete_many({"user_id": user_id})).deleted_count
