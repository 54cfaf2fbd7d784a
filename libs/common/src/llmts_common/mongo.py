"""MongoDB helpers on PyMongo's async API (``AsyncMongoClient``; motor is deprecated by MongoDB in its favour).

The subset the services rely on, which holds on MongoDB 7/8 and on the local MongoDB-wire server used in tests:
single-document atomic writes (``insert_one``, ``update_one``/``find_one_and_update`` with ``$set``, ``$inc``,
``$push``, ``$setOnInsert``, upserts), unique and compound unique indexes (``DuplicateKeyError`` on insert),
``find`` with filter/sort/skip/limit and projection, ``count_documents``, and aggregations with ``$match``,
``$group`` (``$sum``), ``$sort``, ``$skip``, ``$limit``, ``$project``. No multi-document transactions, no change
streams (events go through Kafka), no reliance on TTL indexes (periodic clean-up jobs delete expired documents).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    DuplicateKeyError,
    NetworkTimeout,
    OperationFailure,
    ServerSelectionTimeoutError,
)

Document = dict[str, Any]
Collection = AsyncCollection[Document]
Database = AsyncDatabase[Document]

TRANSIENT_MONGO_ERRORS: tuple[type[BaseException], ...] = (
    AutoReconnect,
    ConnectionFailure,
    NetworkTimeout,
    ServerSelectionTimeoutError,
)


def create_client(
    url: str, *, server_selection_timeout_ms: int = 5000, app_name: str = "llmts"
) -> AsyncMongoClient[Document]:
    """A client; connecting is lazy, so this never blocks or fails at start-up."""
    return AsyncMongoClient(
        url,
        tz_aware=True,
        tzinfo=UTC,
        serverSelectionTimeoutMS=server_selection_timeout_ms,
        connectTimeoutMS=server_selection_timeout_ms,
        appname=app_name,
        uuidRepresentation="standard",
    )


async def ping(client: AsyncMongoClient[Document]) -> bool:
    try:
        await client.admin.command("ping")
    except Exception:
        return False
    return True


@dataclass(frozen=True)
class IndexSpec:
    collection: str
    keys: Sequence[tuple[str, int]]
    unique: bool = False
    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def model(self) -> IndexModel:
        kw: dict[str, Any] = dict(self.options)
        if self.unique:
            kw["unique"] = True
        kw["name"] = self.name or "_".join(f"{k}_{d}" for k, d in self.keys)
        return IndexModel(list(self.keys), **kw)


async def ensure_indexes(db: Database, specs: Sequence[IndexSpec]) -> None:
    """Create every index at start-up; idempotent (same name + same keys is a no-op)."""
    by_collection: dict[str, list[IndexModel]] = {}
    for spec in specs:
        by_collection.setdefault(spec.collection, []).append(spec.model())
    for name, models in by_collection.items():
        await db[name].create_indexes(models)


def is_duplicate_key(exc: BaseException) -> bool:
    """True for a unique-index violation, also where a server reports it as a generic OperationFailure."""
    if isinstance(exc, DuplicateKeyError):
        return True
    if isinstance(exc, OperationFailure):
        return exc.code in (11000, 11001) or "duplicate key" in str(exc).lower()
    return False


def utcnow() -> datetime:
    return datetime.now(UTC)


class ProcessedMessages:
    """Remembers which message ids a consumer has fully handled (deduplication on the envelope id)."""

    COLLECTION = "processed_messages"

    def __init__(self, db: Database) -> None:
        self._col: Collection = db[self.COLLECTION]

    @staticmethod
    def indexes() -> list[IndexSpec]:
        return [IndexSpec(ProcessedMessages.COLLECTION, [("at", 1)], name="at_1")]

    async def seen(self, consumer: str, message_id: str) -> bool:
        return await self._col.find_one({"_id": f"{consumer}:{message_id}"}, {"_id": 1}) is not None

    async def mark(self, consumer: str, message_id: str) -> None:
        try:
            await self._col.insert_one({"_id": f"{consumer}:{message_id}", "at": utcnow()})
        except Exception as exc:
            if not is_duplicate_key(exc):
                raise

    async def purge_older_than(self, cutoff: datetime) -> int:
        result = await self._col.delete_many({"at": {"$lt": cutoff}})
        return result.deleted_count
