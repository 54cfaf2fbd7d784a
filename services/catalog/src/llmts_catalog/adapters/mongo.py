"""MongoDB adapter of the catalog: collections ``models`` (one document per provider model) and ``providers``
(one document per provider: sync state, the fingerprints of the last published catalog and its event outbox)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import DeleteMany, ReplaceOne

from llmts_catalog.domain.catalog import ProviderState
from llmts_common.contracts.events import ModelCatalogUpdated
from llmts_common.mongo import Collection, Database, IndexSpec, is_duplicate_key
from llmts_common.outbox import OUTBOX_FIELD, EmbeddedOutbox
from llmts_providers.models import ModelRecord

log = logging.getLogger("llmts.catalog.mongo")

MODELS = "models"
PROVIDERS = "providers"

INDEXES: list[IndexSpec] = [
    # the local MongoDB-wire server ignores non-unique indexes; real MongoDB uses them for the per-provider scans
    IndexSpec(MODELS, [("provider", 1)], name="provider_1"),
    IndexSpec(MODELS, [("key", 1)], unique=True, name="key_1"),
]

_STATE_FIELDS = {
    "name": 1,
    "configured": 1,
    "model_count": 1,
    "last_synced_at": 1,
    "last_attempt_at": 1,
    "last_error": 1,
    "last_error_at": 1,
    "revision": 1,
}


def _aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class MongoCatalogStore:
    def __init__(self, db: Database, outbox: EmbeddedOutbox | None) -> None:
        self.models: Collection = db[MODELS]
        self.providers: Collection = db[PROVIDERS]
        self._outbox = outbox

    async def ensure_provider(self, name: str, *, configured: bool) -> None:
        try:
            await self.providers.update_one(
                {"_id": name},
                {"$setOnInsert": {"name": name, "revision": 0, "model_count": 0, "fingerprints": []}},
                upsert=True,
            )
        except Exception as exc:  # two replicas inserting at once: the other one won, which is fine
            if not is_duplicate_key(exc):
                raise

    async def published(self, name: str) -> tuple[int, dict[str, str]]:
        doc = await self.providers.find_one({"_id": name}, {"revision": 1, "fingerprints": 1})
        if doc is None:
            return 0, {}
        pairs = doc.get("fingerprints") or []
        return int(doc.get("revision") or 0), {str(p[0]): str(p[1]) for p in pairs}

    async def write_models(
        self,
        name: str,
        records: Sequence[ModelRecord],
        fingerprints: Mapping[str, str],
        *,
        synced_at: datetime,
    ) -> int:
        existing: dict[str, str | None] = {}
        async for doc in self.models.find({"provider": name}, {"fingerprint": 1}):
            existing[str(doc["_id"])] = doc.get("fingerprint")
        ops: list[Any] = []
        keep: set[str] = set()
        for record in records:
            key = record.key
            keep.add(key)
            fp = fingerprints[record.id]
            if existing.get(key) == fp:
                continue
            doc = record.to_document()
            doc.update({"_id": key, "fingerprint": fp, "updated_at": synced_at})
            ops.append(ReplaceOne({"_id": key}, doc, upsert=True))
        written = len(ops)
        gone = sorted(set(existing) - keep)
        if gone:
            ops.append(DeleteMany({"_id": {"$in": gone}}))
        if ops:
            await self.models.bulk_write(ops, ordered=False)
        return written + len(gone)

    async def record_success(
        self,
        name: str,
        *,
        expected_revision: int,
        fingerprints: Mapping[str, str],
        synced_at: datetime,
        configured: bool,
        event: ModelCatalogUpdated | None,
    ) -> bool:
        update: dict[str, Any] = {
            "$set": {
                "name": name,
                "configured": configured,
                "model_count": len(fingerprints),
                "fingerprints": [[k, v] for k, v in sorted(fingerprints.items())],
                "last_synced_at": synced_at,
                "last_attempt_at": synced_at,
            },
            "$inc": {"revision": 1},
        }
        if event is not None and self._outbox is not None:
            update["$push"] = {OUTBOX_FIELD: self._outbox.entry(event)}
        result = await self.providers.update_one({"_id": name, "revision": expected_revision}, update)
        if result.matched_count == 0:
            return False
        if event is not None and self._outbox is not None:
            try:
                await self._outbox.flush_document(self.providers, name)
            except Exception as exc:  # Kafka down: the relay publishes it later
                log.warning("publishing ModelCatalogUpdated for %s deferred to the relay: %s", name, exc)
        return True

    async def record_failure(self, name: str, *, error: str, at: datetime, configured: bool) -> None:
        await self.providers.update_one(
            {"_id": name},
            {
                "$set": {
                    "name": name,
                    "configured": configured,
                    "last_attempt_at": at,
                    "last_error": error,
                    "last_error_at": at,
                }
            },
            upsert=True,
        )

    async def provider_states(self) -> list[ProviderState]:
        states: list[ProviderState] = []
        async for doc in self.providers.find({}, _STATE_FIELDS):
            data = {k: _aware(doc.get(k)) for k in _STATE_FIELDS if doc.get(k) is not None}
            data["name"] = str(doc["_id"])
            states.append(ProviderState.model_validate(data))
        return states

    async def all_models(self) -> list[ModelRecord]:
        return [ModelRecord.from_document(doc) async for doc in self.models.find({})]
