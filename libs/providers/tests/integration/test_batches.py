"""The Batch API client (OpenAIBatches) against the fake OpenAI-compatible server's files + batches endpoints."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from tests.fakes.fixtures import FakeHandle

from llmts_providers import (
    BatchState,
    ChatMessage,
    ChatRequest,
    ModelNotFound,
    OpenAIBatches,
    OpenAICompatibleProvider,
    RateLimited,
)
from llmts_providers.settings import TokenPrice

MODEL = "gpt-4o-mini"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}
PRICE = TokenPrice(prompt=Decimal("0.15"), completion=Decimal("0.6"))


@pytest.fixture
async def provider(fake_openai_compat: FakeHandle) -> AsyncIterator[OpenAICompatibleProvider]:
    p = OpenAICompatibleProvider(base_url=fake_openai_compat.base_url, prices={MODEL: PRICE}, timeout_s=10)
    yield p
    await p.aclose()


def _req(i: int, model: str = MODEL) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=[
            ChatMessage(role="system", content="You name cities."),
            ChatMessage(role="user", content=f"City number {i}."),
        ],
        json_schema=SCHEMA,
    )


async def _until_terminal(batches: OpenAIBatches, state: BatchState) -> BatchState:
    for _ in range(500):
        if state.terminal:
            return state
        await asyncio.sleep(0.02)
        state = await batches.get(state.id)
    raise AssertionError(f"batch {state.id} still {state.status}")


async def test_a_batch_answers_every_line_at_the_discounted_price(
    provider: OpenAICompatibleProvider, fake_openai_compat: FakeHandle
) -> None:
    batches = OpenAIBatches(provider)
    lines = [batches.line(f"job1/{i}/0", _req(i)) for i in range(12)]
    assert lines[0]["url"] == "/v1/chat/completions"
    assert "stream_options" not in lines[0]["body"]
    assert lines[0]["body"]["stream"] is False
    state = await batches.submit(lines, {"job": "job1"})
    assert state.total == 12
    final = await _until_terminal(batches, state)
    assert (final.status, final.completed, final.failed) == ("completed", 12, 0)
    results = await batches.results(final)
    assert sorted(r.custom_id for r in results) == sorted(f"job1/{i}/0" for i in range(12))
    sync = await provider.chat(_req(0))
    for r in results:
        assert r.error is None
        assert r.result is not None
        item = json.loads(r.result.text)
        assert set(item) == {"city", "population"}
        full = provider.cost(MODEL, r.result.prompt_tokens, r.result.completion_tokens)
        assert full is not None
        assert r.result.cost_usd == pytest.approx(float(full) * 0.5)
    assert sync.cost_usd > 0


async def test_failed_lines_land_in_the_error_file_with_the_taxonomy(
    provider: OpenAICompatibleProvider, fake_openai_compat: FakeHandle
) -> None:
    fake_openai_compat.configure(script=[{"status": 429}])  # the first line answered gets a 429
    batches = OpenAIBatches(provider)
    lines = [batches.line("ok/0", _req(0)), batches.line("unknown-model/0", _req(1, model="no-such-model"))]
    fake_openai_compat.configure(batch_concurrency=1)
    final = await _until_terminal(batches, await batches.submit(lines))
    assert final.status == "completed"
    by_id = {r.custom_id: r for r in await batches.results(final)}
    assert isinstance(by_id["ok/0"].error, RateLimited)
    assert isinstance(by_id["unknown-model/0"].error, ModelNotFound)
    assert final.failed == 2


async def test_an_expired_batch_keeps_what_was_done_and_expires_the_rest(
    provider: OpenAICompatibleProvider, fake_openai_compat: FakeHandle
) -> None:
    fake_openai_compat.configure(latency_ms=100, batch_concurrency=2, batch_window_ms=250)
    batches = OpenAIBatches(provider)
    lines = [batches.line(f"j/{i}/0", _req(i)) for i in range(10)]
    final = await _until_terminal(batches, await batches.submit(lines))
    assert final.status == "expired"
    results = await batches.results(final)
    assert len(results) == 10
    done = [r for r in results if r.result is not None]
    expired = [r for r in results if r.error is not None]
    assert 0 < len(done) < 10
    assert all(
        r.error is not None and r.error.retryable and "batch_expired" in r.error.message for r in expired
    )


async def test_cancel_stops_the_batch_and_reports_the_lines_done(
    provider: OpenAICompatibleProvider, fake_openai_compat: FakeHandle
) -> None:
    fake_openai_compat.configure(latency_ms=200, batch_concurrency=1)
    batches = OpenAIBatches(provider)
    state = await batches.submit([batches.line(f"c/{i}/0", _req(i)) for i in range(20)])
    await asyncio.sleep(0.5)
    await batches.cancel(state.id)
    final = await _until_terminal(batches, await batches.get(state.id))
    assert final.status == "cancelled"
    results = await batches.results(final)
    assert 0 < len(results) < 20
    assert all(r.result is not None for r in results)


async def test_an_invalid_input_file_fails_validation(
    provider: OpenAICompatibleProvider, fake_openai_compat: FakeHandle
) -> None:
    batches = OpenAIBatches(provider)
    line = batches.line("dup", _req(0))
    final = await batches.submit([line, line])
    assert final.status == "failed"
    assert any("duplicate_custom_id" in e for e in final.errors)
    assert await batches.results(final) == []


async def test_a_batch_is_found_again_by_its_metadata(
    provider: OpenAICompatibleProvider, fake_openai_compat: FakeHandle
) -> None:
    """A client that died between creating a batch and recording its id finds it by the tag it attached."""
    batches = OpenAIBatches(provider)
    fake_openai_compat.configure(batch_start_delay_ms=60_000)
    first = await batches.submit([batches.line("a/0/1", _req(0))], {"submission": "s-1"})
    for n in range(3):
        await batches.submit([batches.line(f"b/{n}/1", _req(n))], {"submission": f"other-{n}"})
    found = await batches.find("submission", "s-1")
    assert found is not None
    assert (found.id, found.metadata["submission"]) == (first.id, "s-1")
    assert await batches.find("submission", "s-1", scan=2) is None  # beyond the newest two: not looked at
    assert await batches.find("submission", "never") is None
