"""The backlog KEDA scales on, read from the jobs collection (global: every replica reports the same), and the
job-duration histogram (issue 16)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import REGISTRY
from services.generator.tests.integration.conftest import MONGO_URL, Harness
from services.generator.tests.support import command

from llmts_common.mongo import create_client
from llmts_generator.adapters import metrics
from llmts_generator.adapters.repository import JOBS, MongoGenerationRepository


def _job(now: datetime, *, settled: bool, lease_s: float, requested: int, succeeded: int) -> dict[str, Any]:
    return {
        "_id": uuid.uuid4().hex,
        "settled": settled,
        "lease_until": now + timedelta(seconds=lease_s),
        "requested": requested,
        "counts": {"succeeded": succeeded},
    }


def _gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


async def test_backlog_counts_waiting_running_and_owed_items_across_all_jobs() -> None:
    client = create_client(MONGO_URL)
    db = client[f"llmts_backlog_{uuid.uuid4().hex[:8]}"]
    now = datetime.now(UTC)
    try:
        repo = MongoGenerationRepository(db)
        assert await repo.backlog(now) == {"jobs": 0, "queued": 0, "items_pending": 0}
        await db[JOBS].insert_many(
            [
                _job(now, settled=False, lease_s=-3600, requested=100, succeeded=0),  # queued
                _job(
                    now, settled=False, lease_s=-5, requested=50, succeeded=20
                ),  # orphaned by a dead replica
                _job(now, settled=False, lease_s=30, requested=10, succeeded=4),  # running
                _job(
                    now, settled=True, lease_s=-3600, requested=1000, succeeded=990
                ),  # finished: not backlog
            ]
        )
        backlog = await repo.backlog(now)
        assert backlog == {"jobs": 3, "queued": 2, "items_pending": 136}

        stop = asyncio.Event()
        refresher = asyncio.create_task(
            metrics.refresh_backlog(repo.backlog, lambda: now, interval_s=0.05, stop=stop)
        )
        await asyncio.sleep(0.3)
        stop.set()
        await refresher
        assert _gauge("llmts_generator_jobs_queued") == 2
        assert _gauge("llmts_generator_jobs_running") == 1
        assert _gauge("llmts_generator_items_pending") == 136
    finally:
        await client.drop_database(db.name)
        await client.close()


async def test_a_finished_job_is_observed_in_the_duration_histogram(h: Harness) -> None:
    sample = "llmts_generator_job_duration_seconds_count"
    before = REGISTRY.get_sample_value(sample, {"status": "completed"}) or 0.0
    msg = command(f"user-{uuid.uuid4().hex[:6]}", count=2)
    doc = await h.run(msg)
    assert doc["status"] == "completed"
    await h.gen.manager.wait(msg.job_id, 10)  # its runner has returned: the manager observed it
    after = REGISTRY.get_sample_value(sample, {"status": "completed"}) or 0.0
    assert after == before + 1
    total = REGISTRY.get_sample_value("llmts_generator_job_duration_seconds_sum", {"status": "completed"})
    assert total is not None
    assert total > 0
