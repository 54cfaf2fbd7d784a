"""``stored_items`` on the local MongoDB-wire server: a job's items read by id from its counters (the diversity
report's read at the end of a round, issue 14) — the same documents as the query by job, none of another job's."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from services.generator.tests.integration.conftest import MONGO_URL

from llmts_common.mongo import create_client, ensure_indexes
from llmts_generator.adapters.repository import MongoGenerationRepository
from llmts_generator.domain.ports import item_id, rejected_item_id


@pytest.fixture
async def repo() -> AsyncIterator[MongoGenerationRepository]:
    client: Any = create_client(MONGO_URL, server_selection_timeout_ms=10_000)
    name = f"llmts_stored_items_it_{uuid.uuid4().hex[:10]}"
    try:
        repo = MongoGenerationRepository(client[name])
        await ensure_indexes(client[name], repo.indexes())
        yield repo
    finally:
        await client.drop_database(name)
        await client.close()


async def store_job(repo: MongoGenerationRepository, job_id: str, accepted: int, rejected: int) -> None:
    await repo.jobs.insert_one({"_id": job_id, "next_index": accepted, "next_rejected": rejected})
    items = [{"_id": item_id(job_id, i), "job_id": job_id, "index": i} for i in range(accepted)]
    items += [
        {"_id": rejected_item_id(job_id, n), "job_id": job_id, "index": -n - 1} for n in range(rejected)
    ]
    await repo.insert_items(items)


async def test_a_jobs_counted_items_by_id_and_no_other_jobs(repo: MongoGenerationRepository) -> None:
    await store_job(repo, "big", 40, 3)
    await store_job(repo, "small", 5, 2)

    stored = await repo.stored_items("small")
    assert sorted(int(d["index"]) for d in stored) == [-2, -1, 0, 1, 2, 3, 4]
    assert sorted(d["_id"] for d in stored) == sorted(d["_id"] for d in await repo.job_items("small"))
    chunked = await repo.stored_items("big", chunk=7)  # read in chunks of ids
    assert sorted(int(d["index"]) for d in chunked) == list(range(-3, 40))


async def test_an_unknown_job_or_a_job_without_items(repo: MongoGenerationRepository) -> None:
    await repo.jobs.insert_one({"_id": "fresh"})
    assert await repo.stored_items("fresh") == []
    assert await repo.stored_items("missing") == []
