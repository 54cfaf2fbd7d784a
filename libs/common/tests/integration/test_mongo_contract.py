"""Contract suite: the MongoDB subset the services rely on, run against the local MongoDB-wire server.

Everything here must also hold on MongoDB 7/8 (see the docstring of ``llmts_common.mongo``).
"""

from __future__ import annotations

import pytest
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from llmts_common.mongo import Database, IndexSpec, ProcessedMessages, ensure_indexes, is_duplicate_key, ping


async def test_ping(db: Database) -> None:
    assert await ping(db.client)


async def test_insert_find_update_operators(db: Database) -> None:
    col = db["things"]
    await col.insert_one({"_id": "a", "n": 1, "tags": ["x"], "nested": {"k": "v"}})
    await col.update_one({"_id": "a"}, {"$set": {"nested.k": "w"}, "$inc": {"n": 2}, "$push": {"tags": "y"}})
    doc = await col.find_one({"_id": "a"})
    assert doc == {"_id": "a", "n": 3, "tags": ["x", "y"], "nested": {"k": "w"}}
    await col.update_one({"_id": "a"}, {"$pull": {"tags": "x"}})
    assert (await col.find_one({"_id": "a"}, {"tags": 1}))["tags"] == ["y"]  # type: ignore[index]
    await col.update_one({"_id": "a"}, {"$push": {"_outbox": {"id": "e1", "v": 1}}})
    await col.update_one({"_id": "a"}, {"$pull": {"_outbox": {"id": "e1"}}})
    assert (await col.find_one({"_id": "a"}))["_outbox"] == []  # type: ignore[index]


async def test_upsert_and_set_on_insert(db: Database) -> None:
    col = db["jobs"]
    for _ in range(2):
        await col.update_one(
            {"_id": "j1"}, {"$setOnInsert": {"status": "queued", "n": 0}, "$set": {"seen": True}}, upsert=True
        )
    assert await col.count_documents({}) == 1
    assert (await col.find_one({"_id": "j1"}))["status"] == "queued"  # type: ignore[index]


async def test_unique_index_gives_a_clear_duplicate_error(db: Database) -> None:
    await ensure_indexes(db, [IndexSpec("items", [("job_id", 1), ("index", 1)], unique=True)])
    await ensure_indexes(db, [IndexSpec("items", [("job_id", 1), ("index", 1)], unique=True)])  # idempotent
    col = db["items"]
    await col.insert_one({"job_id": "j", "index": 0})
    with pytest.raises(DuplicateKeyError) as info:
        await col.insert_one({"job_id": "j", "index": 0})
    assert is_duplicate_key(info.value)
    await col.insert_one({"job_id": "j", "index": 1})
    await col.insert_one({"job_id": "k", "index": 0})


async def test_find_one_and_update_counter(db: Database) -> None:
    col = db["counters"]
    await col.insert_one({"_id": "job", "next_index": 0})
    got = []
    for _ in range(3):
        doc = await col.find_one_and_update(
            {"_id": "job"}, {"$inc": {"next_index": 1}}, return_document=ReturnDocument.BEFORE
        )
        got.append(doc["next_index"])  # type: ignore[index]
    assert got == [0, 1, 2]
    after = await col.find_one_and_update(
        {"_id": "job", "next_index": {"$lt": 10}},
        {"$set": {"lease": "me"}},
        projection={"next_index": 1},
        return_document=ReturnDocument.AFTER,
    )
    assert after == {"_id": "job", "next_index": 3}


async def test_count_sort_skip_limit(db: Database) -> None:
    col = db["page"]
    await col.insert_many([{"i": i, "owner": "u" if i % 2 else "v"} for i in range(20)])
    assert await col.count_documents({"owner": "u"}) == 10
    page = [d["i"] async for d in col.find({"owner": "u"}).sort("i", -1).skip(2).limit(3)]
    assert page == [15, 13, 11]


async def test_aggregation_shapes_the_app_uses(db: Database) -> None:
    col = db["attempts"]
    await col.insert_many(
        [
            {"job_id": "j", "outcome": "valid", "cost": 0.5, "tokens": 10},
            {"job_id": "j", "outcome": "invalid", "cost": 0.25, "tokens": 5},
            {"job_id": "j", "outcome": "valid", "cost": 0.25, "tokens": 5},
            {"job_id": "other", "outcome": "valid", "cost": 9, "tokens": 9},
        ]
    )
    rows = [
        r
        async for r in await col.aggregate(
            [
                {"$match": {"job_id": "j"}},
                {
                    "$group": {
                        "_id": "$outcome",
                        "n": {"$sum": 1},
                        "cost": {"$sum": "$cost"},
                        "tokens": {"$sum": "$tokens"},
                    }
                },
                {"$sort": {"_id": 1}},
                {"$project": {"n": 1, "cost": 1, "tokens": 1}},
            ]
        )
    ]
    assert rows == [
        {"_id": "invalid", "n": 1, "cost": 0.25, "tokens": 5},
        {"_id": "valid", "n": 2, "cost": 0.75, "tokens": 15},
    ]


async def test_delete_many(db: Database) -> None:
    col = db["old"]
    await col.insert_many([{"k": i} for i in range(5)])
    result = await col.delete_many({"k": {"$lt": 3}})
    assert result.deleted_count == 3


async def test_processed_messages_dedup(db: Database) -> None:
    store = ProcessedMessages(db)
    await ensure_indexes(db, store.indexes())
    assert not await store.seen("c", "m1")
    await store.mark("c", "m1")
    await store.mark("c", "m1")  # a second mark is harmless
    assert await store.seen("c", "m1")
    assert not await store.seen("other", "m1")
