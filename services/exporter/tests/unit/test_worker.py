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
from llmts_exporter.worker import ExportPolicy, ExportWorker

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
    assert record.file_key == "e1-r1"
    assert json.loads(store.files["e1-r1"]) == items
    assert record.sha256 == hashlib.sha256(store.files["e1-r1"]).hexdigest()
    assert record.filename == "otchet-2026-01-01-j1.json"
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
    store.files["e3-r1"] = b"half a fi"  # what the dead run had written
    assert await worker.tick() == 0  # the lease still holds
    clock.now += timedelta(seconds=31)
    await _run(worker)
    assert exports.records["e3"].status == "ready"
    assert exports.records["e3"].attempts == 2
    assert exports.records["e3"].file_key == "e3-r2"
    assert "два" in store.files["e3-r2"].decode()
    assert "e3-r1" not in store.files  # the dead run's partial file is removed


async def test_a_run_that_lost_its_lease_never_touches_the_file_of_the_run_that_took_over() -> None:
    jobs, exports, store, clock, worker = _world()
    await _job(jobs, "j5", "u1", [{"a": i} for i in range(4)])
    await handlers.request_export(
        ExportRequested(export_id="e5", job_id="j5", user_id="u1", format="json"), exports=exports, clock=clock,
        wake=worker.wake,
    )  # fmt: skip
    # run 1 starts in a process that is then cut off from MongoDB longer than the lease
    stale = await exports.claim(now=clock.now, lease_until=clock.now + timedelta(seconds=30), token="cut-off")
    assert stale is not None
    assert await exports.begin_run("e5", token="cut-off", now=clock.now) == 1
    clock.now += timedelta(seconds=31)
    await _run(worker)  # run 2 takes over and finishes
    served = exports.records["e5"]
    assert served.status == "ready"
    assert served.file_key == "e5-r2"
    good = store.files["e5-r2"]
    begun: list[str] = []
    original_begin = store.begin

    async def recording_begin(key: str, **kwargs: str) -> object:
        begun.append(key)
        return await original_begin(key, **kwargs)

    store.begin = recording_begin  # type: ignore[assignment,method-assign]
    original_begin_run = exports.begin_run

    async def run_it_already_had(export_id: str, *, token: str, now: datetime) -> int | None:
        return 1  # the cut-off process resumes inside run 1, unaware of the takeover

    exports.begin_run = run_it_already_had  # type: ignore[method-assign]
    await worker.process(stale, "cut-off")  # it writes its file, then its fenced "ready" write fails
    exports.begin_run = original_begin_run  # type: ignore[method-assign]
    assert begun == ["e5-r1"]  # never the served file
    assert store.files["e5-r2"] == good
    assert hashlib.sha256(store.files["e5-r2"]).hexdigest() == served.sha256
    assert "e5-r1" not in store.files  # its own file is nobody's: discarded
    assert exports.records["e5"].file_key == "e5-r2"


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
    assert not store.files  # the file named by file_key (e4-r1) is gone


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
