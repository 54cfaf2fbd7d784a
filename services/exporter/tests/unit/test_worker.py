"""The export use cases against in-memory fakes: accept, wait, build, recover, clean up."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta

from llmts_common.contracts import (
    ExportFailed,
    ExportReady,
    ExportRequested,
    GenerationCompleted,
    GenerationStarted,
    ItemGenerated,
    ModelRef,
    Usage,
)
from llmts_exporter import handlers
from llmts_exporter.handlers import ExportPolicy, ExportWorker

from .fakes import FakeExports, FakeJobs, MemoryStore


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _world(page_size: int = 2) -> tuple[FakeJobs, FakeExports, MemoryStore, Clock, ExportWorker]:
    jobs, exports, store, clock = FakeJobs(), FakeExports(), MemoryStore(), Clock()
    policy = ExportPolicy(
        wait_for_job=timedelta(seconds=30), page_size=page_size, lease=timedelta(seconds=30)
    )
    return (
        jobs,
        exports,
        store,
        clock,
        ExportWorker(jobs=jobs, exports=exports, store=store, clock=clock, policy=policy),
    )


async def _job(
    jobs: FakeJobs, job_id: str, user_id: str, items: list[object], *, finish: bool = True
) -> None:
    usage = Usage()
    await handlers.on_generation_started(
        GenerationStarted(
            job_id=job_id,
            user_id=user_id,
            requested=len(items),
            model=ModelRef(id="m"),
            template_id="t",
            template_version=1,
            started_at=datetime(2026, 1, 1, tzinfo=UTC),
            template_name="Отчёт",
        ),
        jobs=jobs,
    )
    for i, data in enumerate(items):
        event = ItemGenerated(
            job_id=job_id, user_id=user_id, index=i, data=data, attempts=1, usage=usage, content_hash=str(i)
        )
        await handlers.on_item_generated(event, jobs=jobs)
        await handlers.on_item_generated(event, jobs=jobs)  # redelivery: no duplicate
    if finish:
        done = GenerationCompleted(
            job_id=job_id, user_id=user_id, status="completed", requested=len(items), succeeded=len(items),
            rejected=0, attempts=len(items), usage=usage, duration_seconds=1.0,
        )  # fmt: skip
        await handlers.on_job_ended(done, jobs=jobs, wake=asyncio.Event())


async def _run(worker: ExportWorker) -> None:
    while await worker.tick():
        await worker.drain()


async def test_export_is_built_from_pages_and_published_once() -> None:
    jobs, exports, store, clock, worker = _world()
    items = [{"имя": f"Пётр {i}", "n": i} for i in range(5)]
    await _job(jobs, "j1", "u1", items)
    command = ExportRequested(export_id="e1", job_id="j1", user_id="u1", format="json")
    assert await handlers.request_export(command, exports=exports, clock=clock, wake=worker.wake)
    assert not await handlers.request_export(command, exports=exports, clock=clock, wake=worker.wake)
    await _run(worker)
    record = exports.records["e1"]
    assert record.status == "ready"
    assert json.loads(store.files["e1"]) == items
    assert record.sha256 == hashlib.sha256(store.files["e1"]).hexdigest()
    assert record.filename == "Otchet-j1.json"
    assert [type(e) for e in exports.events] == [ExportReady]


async def test_waits_for_the_job_then_fails_after_the_deadline() -> None:
    jobs, exports, _, clock, worker = _world()
    await _job(jobs, "j2", "u1", [{"a": 1}], finish=False)
    await handlers.request_export(
        ExportRequested(export_id="e2", job_id="j2", user_id="u1", format="csv"), exports=exports, clock=clock,
        wake=worker.wake,
    )  # fmt: skip
    await _run(worker)
    assert exports.records["e2"].status == "queued"
    assert exports.records["e2"].waiting == "waiting for the job to finish"
    clock.now += timedelta(seconds=31)
    await _run(worker)
    assert exports.records["e2"].status == "failed"
    assert isinstance(exports.events[-1], ExportFailed)


async def test_a_stale_lease_is_taken_over_and_finished() -> None:
    jobs, exports, store, clock, worker = _world()
    await _job(jobs, "j3", "u1", ["раз", "два"])
    await handlers.request_export(
        ExportRequested(export_id="e3", job_id="j3", user_id="u1", format="txt"), exports=exports, clock=clock,
        wake=worker.wake,
    )  # fmt: skip
    # a worker that then died claimed it and began a run
    assert await exports.claim(now=clock.now, lease_until=clock.now + timedelta(seconds=30), token="dead")
    assert await exports.begin_run("e3", token="dead", now=clock.now) == 1
    assert await worker.tick() == 0  # the lease still holds
    clock.now += timedelta(seconds=31)
    await _run(worker)
    assert exports.records["e3"].status == "ready"
    assert exports.records["e3"].attempts == 2
    assert "два" in store.files["e3"].decode()


async def test_cleanup_removes_file_and_record() -> None:
    jobs, exports, store, clock, worker = _world()
    await _job(jobs, "j4", "u1", [{"a": 1}])
    await handlers.request_export(
        ExportRequested(export_id="e4", job_id="j4", user_id="u1", format="md"), exports=exports, clock=clock,
        wake=worker.wake,
    )  # fmt: skip
    await _run(worker)
    assert (
        await handlers.cleanup_expired(exports=exports, store=store, now=clock.now, ttl=timedelta(days=7))
        == 0
    )
    later = clock.now + timedelta(days=8)
    assert await handlers.cleanup_expired(exports=exports, store=store, now=later, ttl=timedelta(days=7)) == 1
    assert "e4" not in exports.records
    assert "e4" not in store.files


async def test_a_stopping_worker_hands_its_exports_back_instead_of_holding_the_lease() -> None:
    jobs, exports, store, clock, worker = _world()
    await _job(jobs, "j9", "u1", [{"a": i} for i in range(3)])
    await handlers.request_export(
        ExportRequested(export_id="e9", job_id="j9", user_id="u1", format="json"), exports=exports, clock=clock,
        wake=worker.wake,
    )  # fmt: skip
    gate = asyncio.Event()
    original = store.begin

    async def slow_begin(*args: object, **kwargs: object) -> object:
        await gate.wait()  # the build hangs until the worker is stopped
        return await original(*args, **kwargs)  # type: ignore[arg-type]

    store.begin = slow_begin  # type: ignore[method-assign]
    stop = asyncio.Event()
    run = asyncio.create_task(worker.run(stop))
    for _ in range(100):
        await asyncio.sleep(0)
        if exports.records["e9"].status == "running":
            break
    assert exports.records["e9"].status == "running"
    stop.set()
    worker.wake.set()
    await asyncio.wait_for(run, 5)
    assert exports.records["e9"].status == "queued"  # another process may take it at once
    assert exports.leases["e9"] == (None, None)


def test_the_default_lease_is_short() -> None:
    """A killed exporter's exports wait out the lease before another process takes them (chaos scenario 5)."""
    assert ExportPolicy().lease <= timedelta(seconds=15)
