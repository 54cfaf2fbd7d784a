"""The process-wide load guard with the real generator (its own instance: the guard lives for the whole process):
while something keeps the process's event loop busy, fewer provider calls are kept in flight (the cap shows in
``GET /generate/{id}``) and the job still ends with exactly N items (how the cap grows back once the loop is free:
tests/unit/test_loadguard.py). The ``llmts_generator_load_guard_calls`` gauge is not checked here: it is process-wide
and the other generators of this test process write it too."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from joserfc.jwk import OKPKey
from services.generator.tests.integration.conftest import KAFKA, MONGO_URL, Harness, make_settings
from services.generator.tests.integration.test_generation_jobs import assert_consistent
from services.generator.tests.support import EventTap, command, ensure_topic
from tests.fakes.fixtures import OPENROUTER_TEST_KEY, FakeHandle
from tests.support.tokens import verifier_for

from llmts_common.mongo import create_client
from llmts_generator.bootstrap import bootstrap
from llmts_providers import ProviderFactory, ProviderSettings


@pytest.fixture(scope="module")
async def guarded(session_id: str, key: OKPKey, fake_openrouter_server: FakeHandle) -> AsyncIterator[Any]:
    settings = make_settings(f"{session_id}lg", loop_lag_target_ms=5.0, loop_lag_min_calls=2)
    await ensure_topic(KAFKA, settings.commands_topic)
    factory = ProviderFactory(
        ProviderSettings(
            openrouter_base_url=fake_openrouter_server.base_url, openrouter_api_key=OPENROUTER_TEST_KEY
        )
    )
    app, gen = bootstrap(
        settings, provider_factory=factory, verifier=verifier_for(key), configure_process=False
    )
    async with app.router.lifespan_context(app):
        yield app, gen, settings
    client = create_client(MONGO_URL)
    try:
        await client.drop_database(settings.mongo_db)
    finally:
        await client.close()


@pytest.fixture
async def h(
    guarded: Any, tap: EventTap, fake_openrouter: FakeHandle, token_for: Callable[[str], str]
) -> AsyncIterator[Harness]:
    app, gen, settings = guarded
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://generator", timeout=30) as client:
        yield Harness(gen, client, tap, fake_openrouter, token_for, settings)


async def hog(stop: asyncio.Event) -> None:
    """Keeps the loop busy: 30 ms of blocking work every 40 ms (what a CPU-bound neighbour does to it)."""
    while not stop.is_set():
        time.sleep(0.03)  # noqa: ASYNC251 — the point: the loop cannot run anything else meanwhile
        await asyncio.sleep(0.01)


def process_caps(views: list[dict[str, Any]]) -> list[int | None]:
    return [v.get("openrouter", {}).get("process_cap") for v in views]


async def watch(h: Harness, job_id: str, owner: str, out: list[dict[str, Any]]) -> None:
    while True:
        r = await h.http.get(f"/generate/{job_id}", headers=h.auth(owner))
        if r.status_code == 200:
            view = r.json()
            if view.get("concurrency"):
                out.append(view["concurrency"])
            if view["status"] not in ("queued", "running"):
                return
        await asyncio.sleep(0.1)


async def test_a_busy_loop_caps_the_calls_in_flight_and_the_job_still_ends_exact(h: Harness) -> None:
    owner = f"user-{uuid.uuid4().hex[:8]}"
    h.fake.configure(latency_ms=100)
    stop = asyncio.Event()
    hogging = asyncio.create_task(hog(stop))
    msg = command(owner, count=300, concurrency=16)
    views: list[dict[str, Any]] = []
    await h.submit(msg)
    watcher = asyncio.create_task(watch(h, msg.job_id, owner, views))
    try:
        capped = False
        for _ in range(300):  # the guard re-decides every second on the last second's lag
            await asyncio.sleep(0.1)
            if any(cap is not None for cap in process_caps(views)):
                capped = True
                break
        assert capped, f"no process cap while the loop was kept busy: {views[-3:]}"
    except BaseException:
        watcher.cancel()
        raise
    finally:
        stop.set()
        await hogging
    doc = await h.wait_status(msg.job_id, lambda d: d["status"] not in ("queued", "running"), within=120)
    await watcher
    assert doc["status"] == "completed"
    await assert_consistent(h, msg.job_id, owner, 300)
    caps = [cap for cap in process_caps(views) if cap is not None]
    assert min(caps) >= 2
    assert max(caps) < 16  # held below the job's own concurrency while the loop was busy
