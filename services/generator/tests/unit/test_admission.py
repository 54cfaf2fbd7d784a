"""Job admission of the JobManager on in-memory ports: bounded jobs per user, queued jobs started user by user,
cancels always admitted. Waits are on conditions, never on elapsed time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from services.generator.tests import support
from services.generator.tests.fakes import ScriptedProvider
from services.generator.tests.unit.test_runner import SCHEMA, Harness, harness, review, until

from llmts_common.contracts import GenerationRequested
from llmts_generator.handlers import new_job_document
from llmts_generator.manager import JobManager
from llmts_providers import ChatRequest


def job(user: str, count: int = 3) -> GenerationRequested:
    return support.command(user, count, template=support.template(id="tpl-1", schema=SCHEMA), concurrency=1)


@pytest.fixture
async def gate() -> AsyncIterator[asyncio.Event]:
    """Provider calls wait on this event: jobs stay running until it is set."""
    event = asyncio.Event()
    yield event
    event.set()


def manager(h: Harness, gate: asyncio.Event, *, max_jobs: int, per_user: int) -> JobManager:
    async def held(call: int) -> str:
        await gate.wait()
        return review(call)

    def script(call: int, _req: ChatRequest) -> Any:
        return held(call)

    return JobManager(
        h.deps(ScriptedProvider(script)),
        max_jobs=max_jobs,
        sweep_interval_s=60.0,
        max_jobs_per_user=per_user,
    )


async def queue(h: Harness, *msgs: GenerationRequested) -> None:
    for msg in msgs:
        assert await h.repo.create_job(new_job_document(msg, h.clock()))


def running_users(m: JobManager) -> list[str]:
    return sorted(e.runner.user_id for e in m.running.values())


async def test_a_new_users_job_starts_at_once_while_the_first_users_extra_jobs_wait(
    gate: asyncio.Event,
) -> None:
    h = harness()
    m = manager(h, gate, max_jobs=32, per_user=2)
    a_jobs = [job("A") for _ in range(5)]
    await queue(h, *a_jobs)
    started = [await m.try_start(msg.job_id, "A") for msg in a_jobs]
    assert started == [True, True, False, False, False]
    b = job("B")
    await queue(h, b)
    assert await m.try_start(b.job_id, "B")
    assert running_users(m) == ["A", "A", "B"]
    assert await m.sweep_once() == 0  # A is at its bound; nothing else is queued
    assert h.repo.jobs[a_jobs[2].job_id]["status"] == "queued"
    stop = asyncio.Event()
    loop = asyncio.create_task(m.run(stop))  # the sweep loop: each job's end kicks a sweep
    peak: list[int] = []

    def a_done() -> bool:
        peak.append(running_users(m).count("A"))
        return all(h.repo.jobs[j.job_id]["settled"] for j in a_jobs)

    gate.set()  # jobs end; A's queued jobs start, never more than two at a time
    await until(a_done, "A's queued jobs ran after the first ones")
    assert max(peak) == 2
    stop.set()
    await loop


async def test_queued_jobs_start_user_by_user(gate: asyncio.Event) -> None:
    h = harness()
    m = manager(h, gate, max_jobs=4, per_user=4)
    await queue(h, *(job("A") for _ in range(6)), job("B"), job("B"), job("C"))
    assert await m.sweep_once() == 4
    assert running_users(m) == ["A", "A", "B", "C"]  # not A's four first-queued jobs
    await m.shutdown()


async def test_try_start_without_a_user_looks_it_up(gate: asyncio.Event) -> None:
    h = harness()
    m = manager(h, gate, max_jobs=8, per_user=1)
    first, second = job("A"), job("A")
    await queue(h, first, second)
    assert await m.try_start(first.job_id)
    assert not await m.try_start(second.job_id)
    await m.shutdown()


async def test_a_cancelled_queued_job_ends_although_its_user_is_at_the_bound(gate: asyncio.Event) -> None:
    h = harness()
    m = manager(h, gate, max_jobs=1, per_user=1)
    running, queued = job("A"), job("A")
    await queue(h, running, queued)
    assert await m.try_start(running.job_id, "A")
    await h.repo.request_cancel(queued.job_id, "user", h.clock())
    assert await m.try_start(queued.job_id, "A", cancelling=True)
    assert await m.wait(queued.job_id, 30) == "cancelled"
    await m.shutdown()
