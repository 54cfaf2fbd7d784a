"""Comparison records in the gateway-owned ``comparisons`` collection (issue 18 #6).

One document per comparison: ``_id`` (the comparison id), ``owner_id``, ``template_id``, ``sample``, ``seed``,
``variables``, ``options`` (the jobs' validation settings), ``models`` (``[{model, job_id}]``) and
``created_at``. A comparison is private: every read is by id *and* owner, so another user's reads as missing.
"""

from __future__ import annotations

from typing import Any

from llmts_common.mongo import Collection, IndexSpec

COLLECTION = "comparisons"
INDEXES = [IndexSpec(COLLECTION, [("owner_id", 1), ("created_at", -1)], name="owner_created")]


class MongoComparisons:
    def __init__(self, collection: Collection) -> None:
        self._col = collection

    async def insert(self, record: dict[str, Any]) -> None:
        await self._col.insert_one(dict(record))

    async def get(self, comparison_id: str, *, owner_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self._col.find_one({"_id": comparison_id, "owner_id": owner_id})
        return doc

    async def delete(self, comparison_id: str) -> None:
        await self._col.delete_one({"_id": comparison_id})


async def forget_comparisons(col: Collection, user_id: str) -> int:
    """Erase a deleted user's comparison records (their jobs are the generator's to erase)."""
    result = await col.delete_many({"owner_id": user_id})
    return int(result.deleted_count)
