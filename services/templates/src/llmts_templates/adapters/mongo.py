"""MongoDB repository for ``templates`` and ``template_versions``.

The document is stored as JSON text (``doc_json``): JSON Schemas carry ``$schema``/``$ref``/``$defs`` keys and
user variables may contain dots, which MongoDB field names must not. The fields lists filter on (name,
description, category, tags, visibility) are copied next to it. A delete is a tombstone (``deleted: true``) so
the ``TemplateDeleted`` event rides in the same write; tombstones are purged later (``purge_tombstones``).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Literal

from llmts_common.errors import Conflict
from llmts_common.mongo import Collection, Database, IndexSpec, is_duplicate_key
from llmts_common.outbox import OUTBOX_FIELD
from llmts_templates.domain.document import TemplateDocument, TemplateRecord, TemplateVersion
from llmts_templates.domain.ports import ListFilter, Outbox

TEMPLATES = "templates"
VERSIONS = "template_versions"

INDEXES: list[IndexSpec] = [
    IndexSpec(TEMPLATES, [("owner_id", 1), ("updated_at", -1)], name="owner_updated"),
    IndexSpec(TEMPLATES, [("visibility", 1), ("updated_at", -1)], name="visibility_updated"),
    IndexSpec(TEMPLATES, [("deleted", 1), ("deleted_at", 1)], name="deleted_at"),
    IndexSpec(VERSIONS, [("template_id", 1), ("version", 1)], unique=True, name="template_version"),
]


def _dump(document: TemplateDocument) -> str:
    return json.dumps(document.stored(), ensure_ascii=False, separators=(",", ":"))


def _load(text: str) -> TemplateDocument:
    return TemplateDocument.model_validate(json.loads(text))


def _record(doc: dict[str, Any]) -> TemplateRecord:
    return TemplateRecord(
        id=doc["_id"],
        owner_id=doc["owner_id"],
        version=doc["version"],
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
        document=_load(doc["doc_json"]),
    )


def _fields(record: TemplateRecord) -> dict[str, Any]:
    d = record.document
    return {
        "owner_id": record.owner_id,
        "version": record.version,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "name": d.name,
        "description": d.description,
        "category": d.category,
        "tags": list(d.tags),
        "visibility": d.visibility,
        "doc_json": _dump(d),
    }


class MongoTemplateRepository:
    def __init__(self, db: Database) -> None:
        self.templates: Collection = db[TEMPLATES]
        self.versions: Collection = db[VERSIONS]

    async def insert(self, record: TemplateRecord, *, outbox: Outbox) -> None:
        try:
            await self.templates.insert_one(
                {"_id": record.id, **_fields(record), "deleted": False, OUTBOX_FIELD: list(outbox)}
            )
        except Exception as exc:
            if is_duplicate_key(exc):
                raise Conflict("a template with this id exists", code="template_exists") from exc
            raise

    async def get(self, template_id: str) -> TemplateRecord | None:
        doc = await self.templates.find_one({"_id": template_id}, {OUTBOX_FIELD: 0})
        if doc is None or doc.get("deleted"):
            return None
        return _record(doc)

    async def replace(self, record: TemplateRecord, *, expected_version: int, outbox: Outbox) -> bool:
        update: dict[str, Any] = {"$set": _fields(record)}
        if outbox:
            update["$push"] = {OUTBOX_FIELD: {"$each": list(outbox)}}
        result = await self.templates.update_one(
            {"_id": record.id, "version": expected_version, "deleted": False}, update
        )
        return result.matched_count == 1

    async def mark_deleted(
        self, template_id: str, *, expected_version: int, at: datetime, outbox: Outbox
    ) -> bool:
        update: dict[str, Any] = {"$set": {"deleted": True, "deleted_at": at, "updated_at": at}}
        if outbox:
            update["$push"] = {OUTBOX_FIELD: {"$each": list(outbox)}}
        result = await self.templates.update_one(
            {"_id": template_id, "version": expected_version, "deleted": False}, update
        )
        return result.matched_count == 1

    async def search(self, flt: ListFilter) -> tuple[list[TemplateRecord], int]:
        query = _search_query(flt)
        total = await self.templates.count_documents(query)
        cursor = (
            self.templates.find(query, {OUTBOX_FIELD: 0})
            .sort([("updated_at", -1), ("_id", 1)])
            .skip(flt.offset)
            .limit(flt.limit)
        )
        return [_record(doc) async for doc in cursor], total

    async def facet(self, flt: ListFilter, field: Literal["category", "tags"]) -> dict[str, int]:
        """Grouped in MongoDB by the whole value (a tags list is one group key: no ``$unwind`` in the supported
        subset), so only the distinct values and tag combinations travel; tag lists are split here."""
        pipeline: list[dict[str, Any]] = [
            {"$match": _search_query(flt)},
            {"$group": {"_id": f"${field}", "n": {"$sum": 1}}},
        ]
        counts: dict[str, int] = {}
        async for row in await self.templates.aggregate(pipeline):
            values = row["_id"] if field == "tags" else [row["_id"]]
            for value in dict.fromkeys(values or []):
                if isinstance(value, str) and value:
                    counts[value] = counts.get(value, 0) + int(row["n"])
        return counts

    async def put_version(self, version: TemplateVersion) -> None:
        doc = {
            "template_id": version.template_id,
            "version": version.version,
            "created_at": version.created_at,
            "created_by": version.created_by,
            "note": version.note,
            "public": version.was_public,  # filterable: the versions others may list
            "doc_json": _dump(version.document),
        }
        try:
            await self.versions.update_one(
                {"_id": f"{version.template_id}:{version.version}"}, {"$setOnInsert": doc}, upsert=True
            )
        except Exception as exc:  # two writers upserting the same new id: the first one won, fine
            if not is_duplicate_key(exc):
                raise

    async def get_version(self, template_id: str, version: int) -> TemplateVersion | None:
        doc = await self.versions.find_one({"_id": f"{template_id}:{version}"})
        return _version(doc) if doc else None

    async def list_versions(
        self, template_id: str, *, limit: int, offset: int, public_only: bool = False
    ) -> tuple[list[TemplateVersion], int]:
        query: dict[str, Any] = {"template_id": template_id}
        if public_only:
            query["public"] = True
        total = await self.versions.count_documents(query)
        cursor = self.versions.find(query).sort("version", -1).skip(offset).limit(limit)
        return [_version(doc) async for doc in cursor], total

    async def purge_tombstones(self, before: datetime, *, batch: int = 200) -> int:
        """Delete tombstones older than ``before`` whose events are published, with their versions."""
        cursor = self.templates.find(
            {"deleted": True, "deleted_at": {"$lt": before}}, {"_id": 1, OUTBOX_FIELD: 1}
        ).limit(batch)
        ids = [doc["_id"] async for doc in cursor if not doc.get(OUTBOX_FIELD)]
        if not ids:
            return 0
        await self.versions.delete_many({"template_id": {"$in": ids}})
        result = await self.templates.delete_many({"_id": {"$in": ids}, OUTBOX_FIELD: {"$size": 0}})
        return result.deleted_count


def _whole(value: str) -> dict[str, str]:
    """A case-insensitive whole-value match (on an array field: any element)."""
    return {"$regex": f"^{re.escape(value)}$", "$options": "i"}


def _search_query(flt: ListFilter) -> dict[str, Any]:
    clauses: list[dict[str, Any]] = [{"deleted": False}]
    if flt.only_mine:
        clauses.append({"owner_id": flt.user_id})
    else:
        clauses.append({"$or": [{"owner_id": flt.user_id}, {"visibility": "public"}]})
    if flt.visibility:
        clauses.append({"visibility": flt.visibility})
    if flt.category:
        clauses.append({"category": _whole(flt.category)})
    clauses.extend({"tags": _whole(tag)} for tag in dict.fromkeys(flt.tags))
    if flt.q:
        pattern = re.escape(flt.q)
        clauses.append(
            {
                "$or": [
                    {"name": {"$regex": pattern, "$options": "i"}},
                    {"description": {"$regex": pattern, "$options": "i"}},
                ]
            }
        )
    return {"$and": clauses}


def _version(doc: dict[str, Any]) -> TemplateVersion:
    return TemplateVersion(
        template_id=doc["template_id"],
        version=doc["version"],
        created_at=doc["created_at"],
        created_by=doc["created_by"],
        note=doc.get("note"),
        document=_load(doc["doc_json"]),
    )
