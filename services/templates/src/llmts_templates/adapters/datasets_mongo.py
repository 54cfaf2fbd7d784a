"""MongoDB storage of seed datasets: ``datasets`` (one document per dataset) and ``dataset_chunks`` (its rows).

Rows are stored as JSON text, ``CHUNK_ROWS`` (or ~4 MB) per chunk document keyed ``<dataset id>:<first row>``:
column names are the user's (they may hold dots or start with ``$``, which MongoDB field names must not), and a chunk
read gives a thousand rows in one round trip. An upload writes the dataset as ``uploading``, its chunks, then
``ready`` with its row count and columns; a failed upload removes what it wrote, and one cut short by a crash is purged
later (``purge_stale``). Lists and reads see only ``ready`` datasets.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from llmts_common.mongo import Database, IndexSpec

DATASETS = "datasets"
CHUNKS = "dataset_chunks"

INDEXES: list[IndexSpec] = [
    IndexSpec(DATASETS, [("owner_id", 1), ("created_at", -1)], name="owner_created"),
    IndexSpec(DATASETS, [("status", 1), ("created_at", 1)], name="status_created"),
    IndexSpec(CHUNKS, [("dataset_id", 1), ("first", 1)], unique=True, name="dataset_first"),
]
_META = {
    "_id": 1,
    "owner_id": 1,
    "name": 1,
    "format": 1,
    "rows": 1,
    "columns": 1,
    "bytes": 1,
    "created_at": 1,
}


class MongoDatasetRepository:
    def __init__(self, db: Database) -> None:
        self.datasets = db[DATASETS]
        self.chunks = db[CHUNKS]

    async def count_for(self, owner_id: str) -> int:
        return await self.datasets.count_documents({"owner_id": owner_id, "status": "ready"})

    async def begin(self, meta: dict[str, Any]) -> None:
        await self.datasets.insert_one({**meta, "status": "uploading"})

    async def add_chunk(self, dataset_id: str, first: int, rows: list[dict[str, Any]]) -> None:
        doc = {
            "dataset_id": dataset_id,
            "first": first,
            "count": len(rows),
            "rows_json": json.dumps(rows, ensure_ascii=False, separators=(",", ":")),
        }
        await self.chunks.replace_one({"_id": f"{dataset_id}:{first}"}, doc, upsert=True)

    async def finish(self, dataset_id: str, fields: dict[str, Any]) -> None:
        await self.datasets.update_one({"_id": dataset_id}, {"$set": {**fields, "status": "ready"}})

    async def abort(self, dataset_id: str) -> None:
        await self.chunks.delete_many({"dataset_id": dataset_id})
        await self.datasets.delete_one({"_id": dataset_id})

    async def get(self, dataset_id: str) -> dict[str, Any] | None:
        return await self.datasets.find_one({"_id": dataset_id, "status": "ready"}, _META)

    async def page(self, owner_id: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        query = {"owner_id": owner_id, "status": "ready"}
        total = await self.datasets.count_documents(query)
        cursor = (
            self.datasets.find(query, _META).sort([("created_at", -1), ("_id", 1)]).skip(offset).limit(limit)
        )
        return [doc async for doc in cursor], total

    async def delete(self, dataset_id: str) -> bool:
        """Rows first, then the dataset (a crash in between leaves a dataset a second delete finishes)."""
        await self.chunks.delete_many({"dataset_id": dataset_id})
        return (await self.datasets.delete_one({"_id": dataset_id})).deleted_count == 1

    async def rows(self, dataset_id: str, offset: int, limit: int) -> list[dict[str, Any]]:
        """Rows ``offset`` .. ``offset + limit - 1`` in file order."""
        if limit <= 0:
            return []
        end = offset + limit
        first_chunk = await self.chunks.find_one(
            {"dataset_id": dataset_id, "first": {"$lte": offset}}, {"first": 1}, sort=[("first", -1)]
        )
        start = first_chunk["first"] if first_chunk else 0
        cursor = self.chunks.find(
            {"dataset_id": dataset_id, "first": {"$gte": start, "$lt": end}}, {"first": 1, "rows_json": 1}
        ).sort("first", 1)
        out: list[dict[str, Any]] = []
        async for chunk in cursor:
            rows = json.loads(chunk["rows_json"])
            base = int(chunk["first"])
            out.extend(rows[max(0, offset - base) : max(0, end - base)])
        return out[:limit]

    async def erase_owner(self, owner_id: str) -> int:
        ids = [doc["_id"] async for doc in self.datasets.find({"owner_id": owner_id}, {"_id": 1})]
        for dataset_id in ids:
            await self.delete(dataset_id)
        return len(ids)

    async def purge_stale(self, before: datetime) -> int:
        """Uploads that never finished (the service died mid-upload)."""
        stale = [
            doc["_id"]
            async for doc in self.datasets.find(
                {"status": "uploading", "created_at": {"$lt": before}}, {"_id": 1}
            )
        ]
        for dataset_id in stale:
            await self.abort(dataset_id)
        return len(stale)
