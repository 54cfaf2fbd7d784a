"""Erasing a deleted user's jobs, items and attempts (``UserDeleted``)."""

from __future__ import annotations

from llmts_common.contracts import TERMINAL_STATUSES
from llmts_common.mongo import Database
from llmts_generator.adapters.cache import MongoResponseCache
from llmts_generator.adapters.repository import ATTEMPTS, ITEMS, JOBS


class MongoUserErasure:
    def __init__(self, db: Database, cache: MongoResponseCache | None = None) -> None:
        self.cache = cache
        self.jobs = db[JOBS]
        self.items = db[ITEMS]
        self.attempts = db[ATTEMPTS]

    async def active_jobs(self, user_id: str) -> list[str]:
        query = {"user_id": user_id, "status": {"$nin": list(TERMINAL_STATUSES)}}
        return [doc["_id"] async for doc in self.jobs.find(query, {"_id": 1})]

    async def erase(self, user_id: str) -> dict[str, int]:
        """Attempts and items first, the jobs last: a crash in between leaves the jobs, so the redelivered event
        finds their ids again (idempotent)."""
        ids = [doc["_id"] async for doc in self.jobs.find({"user_id": user_id}, {"_id": 1})]
        attempts = items = 0
        if ids:
            attempts = (await self.attempts.delete_many({"job_id": {"$in": ids}})).deleted_count
            items = (await self.items.delete_many({"job_id": {"$in": ids}})).deleted_count
        cached = await self.cache.erase_user(user_id) if self.cache is not None else 0
        jobs = (await self.jobs.delete_many({"user_id": user_id})).deleted_count
        return {"jobs": jobs, "items": items, "attempts": attempts, "cached_answers": cached}
