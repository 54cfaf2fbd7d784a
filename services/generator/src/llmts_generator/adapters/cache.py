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
from collections.abc import Callable, Sequence
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
        self._wanted: dict[str, list[asyncio.Future[dict[str, Any] | None]]] = {}
        self._reader: asyncio.Task[None] | None = None

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
        doc = await self._read(doc_id)
        if doc is None or doc.get("user_id") != user_id or not _alive(doc.get("expires_at"), self.clock()):
            return None
        return CachedAnswer.of(doc)

    async def get_many(self, user_id: str, keys: Sequence[str]) -> dict[str, CachedAnswer]:
        now, found = self.clock(), {}
        ids = [f"{user_id}:{key}" for key in keys]
        for start in range(0, len(ids), 1000):
            async for doc in self.col.find({"_id": {"$in": ids[start : start + 1000]}}):
                if doc.get("user_id") == user_id and _alive(doc.get("expires_at"), now):
                    found[str(doc["key"])] = CachedAnswer.of(doc)
        return found

    async def _read(self, doc_id: str) -> dict[str, Any] | None:
        """One read, batched with the reads the other slots ask for meanwhile (one ``$in`` query per batch)."""
        future: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._wanted.setdefault(doc_id, []).append(future)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_batches(), name="response-cache-read")
        return await future

    async def _read_batches(self) -> None:
        """By ``_id`` alone (point reads): with the expiry in the filter the local MongoDB-wire server scanned the
        ``expires_at`` index instead (100-800 ms per read at 1 000 entries, measured by bench-economy)."""
        await asyncio.sleep(0)  # the slots that are about to read join this batch
        while self._wanted:
            wanted, self._wanted = self._wanted, {}
            try:
                found = {d["_id"]: d async for d in self.col.find({"_id": {"$in": list(wanted)}})}
            except Exception as exc:  # a cache that cannot be read is a miss, never a failed job
                log.warning("response cache: %d read(s) failed: %s", len(wanted), exc)
                found = {}
            for doc_id, futures in wanted.items():
                for future in futures:
                    if not future.done():
                        future.set_result(found.get(doc_id))

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

    async def flush(self, user_id: str | None = None) -> None:
        """Upsert what is buffered (one bulk write); errors are logged, the entries dropped. ``user_id``: only that
        user's entries, at once and beside a periodic flush in progress (a job's end waits for its own answers, not
        for the other users' — under another user's large backlog that write took ~0.3 s of a small job's end)."""
        if user_id is not None:
            prefix = f"{user_id}:"
            mine = [k for k in self._buffer if k.startswith(prefix)]
            await self._write([self._buffer.pop(k) for k in mine])
            return
        async with self._lock:
            docs, self._buffer = list(self._buffer.values()), {}
            await self._write(docs)

    async def _write(self, docs: list[dict[str, Any]]) -> None:
        if not docs:
            return
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


def _alive(expires_at: object, now: datetime) -> bool:
    if not isinstance(expires_at, datetime):
        return False
    at: datetime = expires_at if expires_at.tzinfo is not None else expires_at.replace(tzinfo=UTC)
    return at > now
