"""MongoDB away mid-job (issue 9: "every accepted attempt billed once"; ARCHITECTURE: "a crash loses no accepted
work"): the running job must hold what it decided, stop launching provider calls, keep what the calls in flight
bring back, and write all of it once the database is back, without billing anything twice.

The outage is simulated WITHOUT restarting the shared MongoDB-wire server (other sessions use it): a repository
adapter around the real Mongo repository raises ``AutoReconnect`` while "down". The first write of each kind
that hits the outage is *applied and then fails* (the reply got lost), so the retries must be idempotent.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import httpx
import pytest
from pymongo.errors import AutoReconnect
from services.generator.tests.integration.conftest import Harness
from services.generator.tests.integration.test_generation_jobs import assert_consistent
from services.generator.tests.support import command

from llmts_generator.adapters.repository import EPOCH
from llmts_generator.domain.ports import GenerationRepository, LeaseLost

# the write path of a running job (and its lease): these fail while the database is "down"
WRITE_PATH = (
    "write",
    "write_batch",
    "insert_attempts",
    "insert_orphan_attempts",
    "insert_items",
    "pull_outbox",
    "set_watermarks",
    "renew",
    "settle",
    "release",
)
# the first call of these during an outage is applied, then its reply is "lost"
APPLY_THEN_FAIL = ("write_batch", "insert_attempts", "insert_items")


class FlakyRepository:
    """Same port as :class:`GenerationRepository`, delegating to the real one, with a switchable outage."""

    def __init__(self, real: GenerationRepository) -> None:
        self._real = real
        self.down = False
        self.failures = 0
        self._lost_reply: set[str] = set()

    def outage(self, down: bool) -> None:
        self.down = down
        self._lost_reply = set(APPLY_THEN_FAIL) if down else set()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if name not in WRITE_PATH:
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            if not self.down:
                return await attr(*args, **kwargs)
            self.failures += 1
            if name in self._lost_reply:
                self._lost_reply.discard(name)
                await attr(*args, **kwargs)  # applied on the server, the answer never arrives
            raise AutoReconnect(f"connection closed ({name})")

        return call


@asynccontextmanager
async def flaky_repository(h: Harness) -> AsyncIterator[FlakyRepository]:
    """Runners claimed while inside use the flaky repository (the manager hands ``deps.repo`` to each runner)."""
    deps = h.gen.manager.deps
    real = deps.repo
    flaky = FlakyRepository(real)
    deps.repo = cast(GenerationRepository, flaky)
    try:
        yield flaky
    finally:
        flaky.outage(False)
        deps.repo = real


async def fake_stats(h: Harness) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(f"{h.fake.root_url}/_fake/stats")
        r.raise_for_status()
        stats: dict[str, Any] = r.json()
        return stats


async def wait_until(predicate: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def assert_billed_once(
    h: Harness, job_id: str, doc: dict[str, Any], n: int, *, lease_lost: bool = False
) -> None:
    """What the provider served is exactly what the job billed: every call once, none lost, none twice."""
    stats = await fake_stats(h)
    attempts = [a async for a in h.gen.repo.attempts.find({"job_id": job_id})]
    assert len(attempts) == stats["calls"], "every provider call is one attempt"
    assert len({a["_id"] for a in attempts}) == len(attempts)
    assert len({(a["run"], a["slot"], a["call"]) for a in attempts}) == len(attempts), (
        "an attempt billed twice"
    )
    assert sum(a["cost_usd"] for a in attempts) == pytest.approx(stats["cost_usd"], abs=1e-9)
    assert doc["usage"]["cost_usd"] == pytest.approx(stats["cost_usd"], abs=1e-9)
    # an orphan (stored after its run lost the lease) may be a valid answer whose item could not be stored: it is
    # billed, and its target was generated again by the next owner
    valid = sum(1 for a in attempts if a["outcome"] == "valid" and not a.get("orphaned"))
    if lease_lost:
        # the old owner's last batch may have had its attempts stored (reply lost) but not its items before it
        # found the lease gone: those valid answers are billed, their targets generated again by the next owner
        assert valid >= n
    else:
        assert valid == n
    items = [d async for d in h.gen.repo.items.find({"job_id": job_id, "status": "accepted"})]
    assert sorted(int(d["index"]) for d in items) == list(range(n))


def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("outage_s", [1.0, 4.5], ids=["short", "longer-than-the-lease"])
async def test_storage_outage_mid_job_loses_and_double_bills_nothing(h: Harness, outage_s: float) -> None:
    owner = user()
    n = 40
    h.fake.configure(latency_ms=80)
    msg = command(owner, count=n, concurrency=6)
    async with flaky_repository(h) as flaky:
        await h.submit(msg)
        await h.wait_status(msg.job_id, lambda d: d["counts"]["succeeded"] >= 10, within=20)
        runner = h.gen.manager.runner(msg.job_id)
        assert runner is not None
        flaky.outage(True)
        # the calls in flight come back (their results are held), then no new call starts while it is down
        await asyncio.sleep(0.6)
        assert runner.writer is not None
        assert not runner.writer.storage_ok
        calls_during = (await fake_stats(h))["calls"]
        await asyncio.sleep(outage_s - 0.6)
        assert (await fake_stats(h))["calls"] == calls_during, "provider calls launched while Mongo was away"
        assert h.gen.manager.runner(msg.job_id) is runner, "the runner gave up during the outage"
        flaky.outage(False)
        doc = await h.wait_status(
            msg.job_id, lambda d: d["status"] == "completed" and d["settled"], within=30
        )
        assert flaky.failures > 0
        assert runner.writer.outages >= 1
    assert doc["run"] == 1, "the job was resumed instead of riding out the outage"
    assert doc["counts"]["succeeded"] == n
    await h.tap.wait_for(msg.job_id, lambda evs: any(e["type"].endswith("completed") for e in evs), 10)
    await assert_consistent(h, msg.job_id, owner, n)
    await assert_billed_once(h, msg.job_id, doc, n)


async def test_lease_taken_during_the_outage_keeps_the_held_attempts(h: Harness) -> None:
    """The outage outlasted the lease and another owner took the job: the old runner cannot write its batch, but
    the answered calls it holds are stored as orphan attempts before it aborts, so they are still billed."""
    owner = user()
    n = 30
    h.fake.configure(latency_ms=80)
    msg = command(owner, count=n, concurrency=6)
    async with flaky_repository(h) as flaky:
        await h.submit(msg)
        await h.wait_status(msg.job_id, lambda d: d["counts"]["succeeded"] >= 8, within=20)
        runner = h.gen.manager.runner(msg.job_id)
        assert runner is not None
        assert runner.writer is not None
        flaky.outage(True)
        await asyncio.sleep(0.6)  # in-flight calls answer and queue up behind the failing batch
        # "another process" claims the expired lease (through the real repository) and then disappears
        await h.gen.repo.jobs.update_one(
            {"_id": msg.job_id},
            {"$set": {"lease_owner": "someone-else", "lease_until": EPOCH}, "$inc": {"run": 1}},
        )
        flaky.outage(False)
        await wait_until(lambda: h.gen.manager.runner(msg.job_id) is not runner, within=15)
        assert runner.writer.error is not None
        assert runner.writer.orphaned > 0
        doc = await h.wait_status(
            msg.job_id, lambda d: d["status"] == "completed" and d["settled"], within=30
        )
    assert doc["run"] >= 3  # ours (1), "someone-else" (2), the resume (3)
    assert doc["counts"]["succeeded"] == n
    await assert_billed_once(h, msg.job_id, doc, n, lease_lost=True)


async def test_numbered_job_update_applies_once(h: Harness) -> None:
    """The writer's job update sent again (its reply was lost) must not ``$inc`` / ``$push`` twice, and a job that
    is not ours any more is still refused."""
    repo = h.gen.repo
    job_id = f"seq-{uuid.uuid4().hex[:8]}"
    await repo.jobs.insert_one({"_id": job_id, "lease_owner": "me", "run": 2, "counts": {"attempts": 0}})
    update = {"$inc": {"counts.attempts": 3}, "$push": {"_outbox": {"$each": [{"id": "e1"}]}}}
    await repo.write_batch(job_id, "me", 2, 1, update)
    await repo.write_batch(job_id, "me", 2, 1, update)  # the retry of the same batch
    await repo.write_batch(job_id, "me", 2, 2, {"$inc": {"counts.attempts": 1}})
    doc = await repo.get_job(job_id)
    assert doc is not None
    assert doc["counts"]["attempts"] == 4
    assert doc["_outbox"] == [{"id": "e1"}]
    assert doc["write_seq"] == 2
    with pytest.raises(LeaseLost):
        await repo.write_batch(job_id, "me", 1, 3, {"$inc": {"counts.attempts": 1}})  # an older run
    with pytest.raises(LeaseLost):
        await repo.write_batch(job_id, "other", 2, 2, {"$inc": {"counts.attempts": 1}})
    await repo.jobs.delete_one({"_id": job_id})
