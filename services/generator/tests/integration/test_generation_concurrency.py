"""Adaptive concurrency per provider with the real generator (its own instance: the limiters live for the whole
process and these tests teach them): a hidden capacity behind 429s is learned with few of them; streamed calls to
a one-slot server (the fake Ollama queueing like ``OLLAMA_NUM_PARALLEL=1``) keep at most one call waiting in its
queue; the current limit shows in progress events and in ``GET /generate/{id}``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from joserfc.jwk import OKPKey
from services.generator.tests.integration.conftest import KAFKA, MONGO_URL, Harness, make_settings
from services.generator.tests.integration.test_generation_jobs import assert_consistent
from services.generator.tests.support import EventTap, command, ensure_topic
from tests.fakes.fixtures import (  # noqa: F401  (the fake Ollama's fixtures)
    OPENROUTER_TEST_KEY,
    FakeHandle,
    fake_ollama,
    fake_ollama_server,
)
from tests.support.tokens import verifier_for

from llmts_common.contracts import ModelRef
from llmts_common.mongo import create_client
from llmts_generator.bootstrap import bootstrap
from llmts_providers import ProviderFactory, ProviderSettings


def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
async def adaptive(
    session_id: str,
    key: OKPKey,
    fake_openrouter_server: FakeHandle,
    fake_ollama_server: FakeHandle,  # noqa: F811
) -> AsyncIterator[tuple[Any, Any, Any]]:
    settings = make_settings(f"{session_id}ac", stream_providers="ollama")
    await ensure_topic(KAFKA, settings.commands_topic)
    factory = ProviderFactory(
        ProviderSettings(
            openrouter_base_url=fake_openrouter_server.base_url,
            openrouter_api_key=OPENROUTER_TEST_KEY,
            ollama_base_url=fake_ollama_server.base_url,
            provider_timeout_seconds=20,
            provider_first_token_timeout_seconds=20,
            provider_idle_timeout_seconds=5,
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
async def ha(
    adaptive: tuple[Any, Any, Any],
    tap: EventTap,
    fake_openrouter: FakeHandle,
    fake_ollama: FakeHandle,  # noqa: F811
    token_for: Callable[[str], str],
) -> AsyncIterator[tuple[Harness, FakeHandle]]:
    app, gen, settings = adaptive
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://generator", timeout=30) as client:
        yield Harness(gen, client, tap, fake_openrouter, token_for, settings), fake_ollama


async def watch_job_view(h: Harness, job_id: str, owner: str) -> list[dict[str, Any]]:
    """``concurrency`` of GET /generate/{id} every 50 ms until the job ends."""
    seen: list[dict[str, Any]] = []
    for _ in range(1200):
        r = await h.http.get(f"/generate/{job_id}", headers=h.auth(owner))
        if r.status_code == 200:
            view = r.json()
            if view.get("concurrency"):
                seen.append(view["concurrency"])
            if view["status"] not in ("queued", "running"):
                return seen
        await asyncio.sleep(0.05)
    return seen


async def test_a_hidden_capacity_is_learned_with_few_429s(ha: tuple[Harness, FakeHandle]) -> None:
    h, _ = ha
    owner = user()
    h.fake.configure(max_concurrency=4, latency_ms=100)
    msg = command(owner, count=80, concurrency=8)
    watcher = asyncio.create_task(watch_job_view(h, msg.job_id, owner))
    doc = await h.run(msg, within=60)
    views = await watcher
    assert doc["status"] == "completed"
    await assert_consistent(h, msg.job_id, owner, 80)
    stats = h.fake.stats()
    refused = stats["by_outcome"].get("429", 0)
    print(f"calls={stats['calls']} 429={refused} ({refused / stats['calls']:.1%}) limits seen: {views[-3:]}")
    assert stats["max_active"] <= 4
    # the job's first 8 calls at once → one burst of four 429s, then the level that failed (5) is probed
    # after 4, 8, 16 … round trips (a probe can meet one or two calls in flight at that level)
    assert refused <= 16
    final = views[-1]["openrouter"]
    assert final["ceiling"] == 64
    assert final["adaptive"] is True
    assert 3 <= final["current"] <= 5  # 4, or one below / one above around a probe
    progress = [e["data"] for e in h.tap.events(msg.job_id, "progress")]
    assert progress
    assert progress[-1]["concurrency"]["openrouter"]["ceiling"] == 64


async def test_streamed_calls_to_a_one_slot_server_queue_at_most_one(ha: tuple[Harness, FakeHandle]) -> None:
    """The fake Ollama serves one call at a time and queues the others (a fast first token, then a ~0.7 s answer).
    The job asks for 4 at once; the limiter starts at 1, and the one call its probe sends above 1 is seen queueing
    (no first token while the other answer goes on): so the server's queue never holds more than one of ours."""
    h, ollama = ha
    owner = user()
    ollama.configure(
        max_concurrency=1, over_capacity="queue", latency_ms=30, chunk_interval_ms=120, stream_chunk_chars=10
    )
    msg = command(owner, count=8, concurrency=4, model=ModelRef(provider="ollama", id="llama3.2"))
    watcher = asyncio.create_task(watch_job_view(h, msg.job_id, owner))
    doc = await h.run(msg, within=90)
    views = await watcher
    assert doc["status"] == "completed"
    await assert_consistent(h, msg.job_id, owner, 8)
    stats = ollama.stats()
    print(f"ollama calls={stats['calls']} max_queued={stats['max_queued']} limits seen: {views[-3:]}")
    assert stats["max_queued"] <= 1
    assert all(r["body"]["stream"] is True for r in stats["last_requests"] if r["path"] == "/api/chat")
    attempts = [a async for a in h.gen.repo.attempts.find({"job_id": msg.job_id})]
    assert not [a for a in attempts if (a.get("error") or {}).get("code") == "provider_timeout"]
    answered = [a for a in attempts if a.get("outcome") in ("valid", "invalid", "duplicate")]
    assert answered
    assert all(a["first_token_ms"] is not None for a in answered)  # streamed: the TTFT is in /history/{id}
    print(f"times to first token (ms): {sorted(round(a['first_token_ms']) for a in answered)}")
    assert views
    assert {v["ollama"]["ceiling"] for v in views} == {4}
    assert max(v["ollama"]["current"] for v in views) <= 2
