"""Batch-mode jobs through the real generator (Kafka, the Mongo-wire server) against the fake OpenAI-compatible
server's files + batches endpoints over HTTP: exactly N, each line billed once at the batch price, a runner that
dies mid-window is resumed by polling its persisted batch (no line submitted twice), and expired lines are topped
up in a further batch."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from joserfc.jwk import OKPKey
from services.generator.tests.integration.conftest import MONGO_URL, Harness, make_settings
from services.generator.tests.support import EventTap, command, ensure_topic
from tests.fakes.fixtures import (  # noqa: F401
    OPENROUTER_TEST_KEY,
    FakeHandle,
    fake_openai_compat,
    fake_openai_compat_server,
)
from tests.support.tokens import verifier_for

from llmts_common.contracts import GenerationRequested, ModelRef
from llmts_common.mongo import create_client
from llmts_generator.bootstrap import Generator, bootstrap
from llmts_generator.domain.state import is_terminal
from llmts_providers import ProviderFactory, ProviderSettings
from llmts_providers.settings import TokenPrice

MODEL = "gpt-4o-mini"
PRICE = TokenPrice(prompt=Decimal("0.15"), completion=Decimal("0.6"))


@pytest.fixture(scope="module")
async def batch_generator(
    session_id: str,
    key: OKPKey,
    fake_openai_compat_server: FakeHandle,  # noqa: F811
    fake_openrouter_server: FakeHandle,
) -> AsyncIterator[tuple[Any, Generator]]:
    """A generator of its own (own database, group and commands topic) that knows the openai-compatible fake."""
    suffix = f"{session_id}_b"
    settings = make_settings(
        suffix,
        batch_poll_initial_seconds=0.05,
        batch_poll_max_seconds=0.2,
        batch_cancel_wait_seconds=5.0,
    )
    await ensure_topic(settings.kafka_bootstrap_servers, settings.commands_topic)
    factory = ProviderFactory(
        ProviderSettings(
            openrouter_base_url=fake_openrouter_server.base_url,
            openrouter_api_key=OPENROUTER_TEST_KEY,
            openai_compatible_base_url=fake_openai_compat_server.base_url,
            openai_compatible_prices={MODEL: PRICE},
            provider_timeout_seconds=20,
        )
    )
    app, gen = bootstrap(
        settings, provider_factory=factory, verifier=verifier_for(key), configure_process=False
    )
    async with app.router.lifespan_context(app):
        yield app, gen
    client = create_client(MONGO_URL)
    try:
        await client.drop_database(settings.mongo_db)
    finally:
        await client.close()


@pytest.fixture
async def bh(
    batch_generator: tuple[Any, Generator],
    tap: EventTap,
    fake_openai_compat: FakeHandle,  # noqa: F811
    token_for: Callable[[str], str],
) -> AsyncIterator[Harness]:
    app, gen = batch_generator
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://generator", timeout=30) as client:
        yield Harness(gen, client, tap, fake_openai_compat, token_for, gen.settings)


def batch_command(count: int, **over: Any) -> GenerationRequested:
    model = ModelRef(provider="openai-compatible", id=MODEL)
    return command(f"user-{uuid.uuid4().hex[:8]}", count, model=model, mode="batch", dedup=False, **over)


async def submissions(fake: FakeHandle) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=fake.root_url) as client:
        return (await client.get("/_fake/batches")).json()  # type: ignore[no-any-return]


async def finished(h: Harness, job_id: str, within: float = 60) -> dict[str, Any]:
    return await h.wait_status(
        job_id, lambda d: is_terminal(str(d.get("status"))) and bool(d.get("settled")), within
    )


async def test_a_batch_job_ends_with_exactly_n_items_billed_once_at_the_batch_price(bh: Harness) -> None:
    bh.fake.configure(rate_invalid_json=0.2, seed=7)
    msg = batch_command(30)
    await bh.submit(msg)
    doc = await finished(bh, msg.job_id)

    assert doc["status"] == "completed"
    assert doc["counts"]["succeeded"] == 30
    items = [d async for d in bh.gen.repo.items.find({"job_id": msg.job_id, "status": "accepted"})]
    assert sorted(d["index"] for d in items) == list(range(30))
    attempts = [a async for a in bh.gen.repo.attempts.find({"job_id": msg.job_id})]
    seen = await submissions(bh.fake)
    assert seen["resubmitted_lines"] == 0
    assert len(attempts) == seen["lines_submitted"]  # one attempt per line: billed once
    assert seen["batches"] >= 2  # the invalid answers were repaired in a further batch
    assert {a["mode"] for a in attempts} == {"batch"}
    # each line costs half its sync price (usage × price × 0.5); the job's cost is the sum of its lines
    sync_price = sum(
        a["prompt_tokens"] * float(PRICE.prompt) / 1e6
        + a["completion_tokens"] * float(PRICE.completion) / 1e6
        for a in attempts
    )
    assert sync_price > 0
    assert round(doc["usage"]["cost_usd"], 9) == round(sum(a["cost_usd"] for a in attempts), 9)
    assert doc["usage"]["cost_usd"] == pytest.approx(sync_price * 0.5, rel=1e-6)
    assert all(record["ingested"] for record in doc["batches"].values())
    await bh.tap.wait_for(msg.job_id, lambda evs: any(e["type"].endswith("completed") for e in evs), 20)
    progress = [e for e in bh.tap.by_job[msg.job_id] if e["type"].endswith("progress")]
    assert any((e["data"].get("batch") or {}).get("batches", 0) >= 1 for e in progress)


async def test_a_runner_that_dies_mid_window_is_resumed_without_resubmitting(bh: Harness) -> None:
    bh.fake.configure(batch_start_delay_ms=1500)
    msg = batch_command(20)
    await bh.submit(msg)
    await bh.wait_status(msg.job_id, lambda d: bool(d.get("batches")), within=20)
    entry = bh.gen.manager.running[msg.job_id]
    entry.task.cancel()  # the process dies while its batch waits at the provider: no terminal write, no release
    await asyncio.gather(entry.task, return_exceptions=True)

    doc = await finished(bh, msg.job_id)

    assert (doc["status"], doc["run"]) == ("completed", 2)
    seen = await submissions(bh.fake)
    assert (seen["batches"], seen["resubmitted_lines"], seen["lines_submitted"]) == (1, 0, 20)
    assert doc["counts"]["succeeded"] == 20
    assert doc["counts"]["attempts"] == 20


async def test_expired_lines_are_topped_up_in_a_further_batch(bh: Harness) -> None:
    bh.fake.configure(latency_ms=40, batch_concurrency=2, batch_window_ms=300)
    msg = batch_command(16)
    await bh.submit(msg)
    doc = await finished(bh, msg.job_id)

    assert doc["status"] == "completed"
    assert doc["counts"]["succeeded"] == 16
    attempts = [a async for a in bh.gen.repo.attempts.find({"job_id": msg.job_id})]
    expired = [a for a in attempts if a["outcome"] == "expired"]
    assert expired  # the window was too short for the first batch
    assert all(a["cost_usd"] == 0 for a in expired)  # a line never run costs nothing
    seen = await submissions(bh.fake)
    assert seen["batches"] >= 2
    assert seen["resubmitted_lines"] == 0  # an expired line goes again under a new custom id (its next call)


async def test_cancel_cancels_the_batch_at_the_provider(bh: Harness) -> None:
    bh.fake.configure(batch_start_delay_ms=60_000)
    msg = batch_command(5)
    await bh.submit(msg)
    doc = await bh.wait_status(msg.job_id, lambda d: bool(d.get("batches")), within=20)
    assert bh.gen.manager.cancel_local(msg.job_id)
    doc = await finished(bh, msg.job_id)
    assert doc["status"] == "cancelled"
    batch_id = next(iter(doc["batches"].values()))["id"]
    async with httpx.AsyncClient(base_url=bh.fake.base_url) as client:
        state = (await client.get(f"/batches/{batch_id}")).json()
    assert state["status"] == "cancelled"
