"""Erasing a deleted user's exports (documents and files) and the exporter's copy of their jobs and items."""

from __future__ import annotations

from llmts_common.mongo import Database
from llmts_exporter.adapters.mongo import EXPORTS, JOB_ITEMS, JOBS
from llmts_exporter.domain.ports import FileStore
from llmts_exporter.handlers import run_file_key

MAX_RUNS_SWEPT = 10  # files of earlier runs of one export (normally removed by the run that succeeded)


class MongoUserErasure:
    def __init__(self, db: Database, store: FileStore) -> None:
        self.exports = db[EXPORTS]
        self.jobs = db[JOBS]
        self.items = db[JOB_ITEMS]
        self.store = store

    async def erase(self, user_id: str) -> dict[str, int]:
        """Files, then export documents, then the job projection: each step is idempotent (a missing file or
        document is fine), so a redelivery after a crash finishes the job."""
        files = 0
        async for doc in self.exports.find({"user_id": user_id}, {"_id": 1, "file_key": 1, "attempts": 1}):
            export_id = str(doc["_id"])
            runs = min(int(doc.get("attempts") or 0), MAX_RUNS_SWEPT)
            keys = {export_id, *(run_file_key(export_id, n) for n in range(1, runs + 1))}
            if doc.get("file_key"):
                keys.add(str(doc["file_key"]))
            for key in keys:
                await self.store.delete(key)
            files += 1
        exports = (await self.exports.delete_many({"user_id": user_id})).deleted_count
        ids = [doc["_id"] async for doc in self.jobs.find({"user_id": user_id}, {"_id": 1})]
        items = 0
        if ids:
            items = (await self.items.delete_many({"job_id": {"$in": ids}})).deleted_count
        jobs = (await self.jobs.delete_many({"user_id": user_id})).deleted_count
        return {"exports": exports, "export_files": files, "jobs": jobs, "items": items}
