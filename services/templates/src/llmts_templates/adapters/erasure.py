"""Erasing a deleted user's templates and their versions (``UserDeleted``)."""

from __future__ import annotations

from llmts_common.mongo import Database
from llmts_templates.adapters.datasets_mongo import MongoDatasetRepository
from llmts_templates.adapters.mongo import TEMPLATES, VERSIONS


class MongoUserErasure:
    def __init__(self, db: Database) -> None:
        self.templates = db[TEMPLATES]
        self.versions = db[VERSIONS]
        self.datasets = MongoDatasetRepository(db)

    async def erase(self, user_id: str) -> dict[str, int]:
        """Versions first, then the templates that list them: a crash in between leaves the templates, so the
        redelivered event finds them again (idempotent; a second run deletes nothing)."""
        ids = [doc["_id"] async for doc in self.templates.find({"owner_id": user_id}, {"_id": 1})]
        versions = 0
        if ids:
            versions = (await self.versions.delete_many({"template_id": {"$in": ids}})).deleted_count
        templates = (await self.templates.delete_many({"owner_id": user_id})).deleted_count
        datasets = await self.datasets.erase_owner(user_id)
        return {"templates": templates, "versions": versions, "datasets": datasets}
