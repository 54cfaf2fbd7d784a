"""Mongo adapters: the job projection (``jobs``, ``job_items``) and the export aggregate (``exports``)."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument

from llmts_common.contracts import Message
from llmts_common.mongo import Collection, Database, IndexSpec, is_duplicate_key
from llmts_common.outbox import OUTBOX_FIELD, EmbeddedOutbox
from llmts_exporter.domain.exports import FINAL_STATUSES, JobView
from llmts_exporter.domain.jobs import model_key
from llmts_exporter.domain.ports import ExportRecord

JOBS = "jobs"
JOB_ITEMS = "job_items"
EXPORTS = "exports"

INDEXES: list[IndexSpec] = [
    IndexSpec(JOB_ITEMS, [("job_id", 1), ("index", 1)], unique=True, name="job_index_unique"),
    IndexSpec(JOBS, [("user_id", 1)], name="user_1"),
    IndexSpec(EXPORTS, [("user_id", 1), ("job_id", 1), ("created_at", -1)], name="user_job_created"),
    IndexSpec(EXPORTS, [("status", 1), ("not_before", 1)], name="status_not_before"),
    IndexSpec(EXPORTS, [("created_at", 1)], name="created_1"),
]


def _item_id(job_id: str, index: int) -> str:
    # zero-padded, so _id order within a job is index order
    return f"{job_id}:{index:012d}"


class _SeenModels:
    """The models already added to each recent job's ``models`` (bounded: the oldest jobs are forgotten, which
    only costs one more idempotent ``$addToSet``)."""

    def __init__(self, max_jobs: int = 10_000) -> None:
        self._jobs: OrderedDict[str, set[str]] = OrderedDict()
        self._max = max_jobs

    def seen(self, job_id: str, key: str) -> bool:
        return key in self._jobs.get(job_id, ())

    def add(self, job_id: str, key: str) -> None:
        self._jobs.setdefault(job_id, set()).add(key)
        self._jobs.move_to_end(job_id)
        while len(self._jobs) > self._max:
            self._jobs.popitem(last=False)


class MongoJobProjection:
    def __init__(self, db: Database) -> None:
        self._jobs: Collection = db[JOBS]
        self._items: Collection = db[JOB_ITEMS]
        self._models = _SeenModels()

    async def apply(self, job_id: str, fields: Mapping[str, Any], *, terminal: bool) -> None:
        update: dict[str, Any] = {"$set": dict(fields)}
        if not terminal:
            update["$setOnInsert"] = {"status": "running", "terminal": False}
        await self._jobs.update_one({"_id": job_id}, update, upsert=True)

    async def add_item(
        self, job_id: str, user_id: str, index: int, data: Any, *, provenance: Mapping[str, Any] | None = None
    ) -> None:
        # Stored as JSON text: item keys may be anything a model produced ("a.b", "$where", "1st name"), which
        # BSON field names do not all allow, and the text keeps the item's key order exactly. The provenance
        # too (a task row's keys are the user's); ``model_key`` is the item's model as one string.
        doc = {
            "job_id": job_id,
            "user_id": user_id,
            "index": index,
            "data_json": json.dumps(data, ensure_ascii=False),
        }
        key = model_key(dict(provenance)) if provenance else None
        if provenance:
            doc["provenance_json"] = json.dumps(dict(provenance), ensure_ascii=False)
            doc["model_key"] = key
        try:
            await self._items.update_one({"_id": _item_id(job_id, index)}, {"$setOnInsert": doc}, upsert=True)
        except Exception as exc:
            if not is_duplicate_key(exc):  # two concurrent upserts of one item: the first one won
                raise
        if key is not None and not self._models.seen(job_id, key):
            # once per (job, model) in this process, not per item: a job's items are on one partition
            await self._jobs.update_one(
                {"_id": job_id},
                {"$addToSet": {"models": key}, "$setOnInsert": {"status": "running", "terminal": False}},
                upsert=True,
            )
            self._models.add(job_id, key)

    async def get(self, job_id: str) -> JobView | None:
        doc = await self._jobs.find_one({"_id": job_id})
        if doc is None:
            return None
        return JobView.model_validate({**doc, "job_id": job_id})

    async def count_items(self, job_id: str) -> int:
        return await self._items.count_documents({"job_id": job_id})

    async def items_page(
        self, job_id: str, *, after_index: int, limit: int, provenance: bool = False
    ) -> list[tuple[int, Any, dict[str, Any] | None]]:
        fields = {"index": 1, "data_json": 1, **({"provenance_json": 1} if provenance else {})}
        cursor = (
            self._items.find({"job_id": job_id, "index": {"$gt": after_index}}, fields)
            .sort("index", 1)
            .limit(limit)
        )
        return [
            (
                int(d["index"]),
                json.loads(d["data_json"]),
                json.loads(d["provenance_json"]) if provenance and "provenance_json" in d else None,
            )
            async for d in cursor
        ]


_RECORD_FIELDS = set(ExportRecord.__dataclass_fields__)


def _record(doc: Mapping[str, Any]) -> ExportRecord:
    values = {k: v for k, v in doc.items() if k in _RECORD_FIELDS}
    values["export_id"] = doc["_id"]
    values.setdefault("options", {})
    return ExportRecord(**values)


class MongoExportRepository:
    def __init__(self, db: Database, outbox: EmbeddedOutbox) -> None:
        self._col: Collection = db[EXPORTS]
        self._outbox = outbox

    @property
    def collection(self) -> Collection:
        return self._col

    async def create(self, record: ExportRecord) -> bool:
        doc = {k: v for k, v in record.__dict__.items() if k != "export_id"}
        doc.update(_id=record.export_id, not_before=record.created_at, lease_token=None, lease_until=None)
        doc[OUTBOX_FIELD] = []
        try:
            await self._col.insert_one(doc)
        except Exception as exc:
            if is_duplicate_key(exc):
                return False
            raise
        return True

    async def get(self, export_id: str) -> ExportRecord | None:
        doc = await self._col.find_one({"_id": export_id}, {OUTBOX_FIELD: 0})
        return _record(doc) if doc else None

    async def list_for(
        self, user_id: str, *, job_id: str | None, fmt: str | None, limit: int, offset: int = 0
    ) -> tuple[list[ExportRecord], int]:
        query: dict[str, Any] = {"user_id": user_id}
        if job_id is not None:
            query["job_id"] = job_id
        if fmt is not None:
            query["format"] = fmt
        cursor = self._col.find(query, {OUTBOX_FIELD: 0}).sort("created_at", -1).skip(offset).limit(limit)
        return [_record(d) async for d in cursor], await self._col.count_documents(query)

    async def claim(self, *, now: datetime, lease_until: datetime, token: str) -> ExportRecord | None:
        doc = await self._col.find_one_and_update(
            {
                "$or": [
                    {"status": "queued", "not_before": {"$lte": now}},
                    {"status": "running", "lease_until": {"$lt": now}},
                ]
            },
            {
                "$set": {
                    "status": "running",
                    "lease_token": token,
                    "lease_until": lease_until,
                    "updated_at": now,
                }
            },
            sort=[("not_before", 1)],
            return_document=ReturnDocument.AFTER,
        )
        return _record(doc) if doc else None

    async def begin_run(self, export_id: str, *, token: str, now: datetime) -> int | None:
        doc = await self._col.find_one_and_update(
            {"_id": export_id, "lease_token": token},
            {"$inc": {"attempts": 1}, "$set": {"waiting": None, "started_at": now, "updated_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        return int(doc["attempts"]) if doc else None

    async def renew(self, export_id: str, *, token: str, lease_until: datetime) -> bool:
        result = await self._col.update_one(
            {"_id": export_id, "lease_token": token}, {"$set": {"lease_until": lease_until}}
        )
        return result.matched_count == 1

    async def release(self, export_id: str, *, token: str, not_before: datetime, waiting: str) -> None:
        await self._col.update_one(
            {"_id": export_id, "lease_token": token},
            {
                "$set": {
                    "status": "queued",
                    "not_before": not_before,
                    "waiting": waiting,
                    "lease_token": None,
                    "lease_until": None,
                }
            },
        )

    async def finish(
        self,
        export_id: str,
        *,
        token: str | None,
        fields: Mapping[str, Any],
        events: Sequence[Message],
    ) -> bool:
        query: dict[str, Any] = {"_id": export_id}
        if token is None:
            query["status"] = "queued"
        else:
            query["lease_token"] = token
            query["status"] = {"$nin": sorted(FINAL_STATUSES)}
        update: dict[str, Any] = {
            "$set": {**fields, "lease_token": None, "lease_until": None, "waiting": None}
        }
        if events:
            update["$push"] = {OUTBOX_FIELD: {"$each": [self._outbox.entry(e) for e in events]}}
        result = await self._col.update_one(query, update)
        return result.matched_count == 1

    async def flush_events(self, export_id: str) -> None:
        await self._outbox.flush_document(self._col, export_id)

    async def expired(self, *, before: datetime, limit: int) -> list[ExportRecord]:
        cursor = self._col.find({"created_at": {"$lt": before}}, {OUTBOX_FIELD: 0}).limit(limit)
        return [_record(d) async for d in cursor]

    async def delete(self, export_id: str) -> None:
        await self._col.delete_one({"_id": export_id})
