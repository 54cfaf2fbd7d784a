"""Deadlines of streamed calls (first token, then idle between chunks) and of non-streamed ones (total), on both
adapters against the in-process fakes (real HTTP): a slow first token, a stall mid-stream, a long answer that keeps
coming; the first-token listener; the fakes' hidden capacity (refused or queued calls)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.fakes.fixtures import FakeHandle

from llmts_providers import (
    ChatMessage,
    ChatRequest,
    OllamaProvider,
    OpenAICompatibleProvider,
    OpenRouterProvider,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from llmts_providers.base import Provider
from llmts_providers.deadlines import first_token_listener

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"title": {"type": "string", "minLength": 40, "maxLength": 60}},
    "required": ["title"],
    "additionalProperties": False,
}


@pytest.fixture(params=["openrouter", "ollama"])
def target(
    request: pytest.FixtureRequest,
    openrouter: OpenRouterProvider,
    ollama: OllamaProvider,
    fake_openrouter: FakeHandle,
    fake_ollama: FakeHandle,
) -> tuple[Provider, FakeHandle]:
    if request.param == "openrouter":
        return openrouter, fake_openrouter
    return ollama, fake_ollama


async def _idle(fake: FakeHandle) -> None:
    """Wait until calls of earlier tests have left the fake (a stalled stream holds its place until the fake's next
    write notices the hang-up)."""
    for _ in range(100):
        if fake.stats()["active"] == 0 and fake.stats()["queued"] == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the fake still serves {fake.stats()['active']} calls")


@pytest.fixture(params=["openrouter", "ollama", "openai-compatible"])
async def any_target(
    request: pytest.FixtureRequest,
    openrouter: OpenRouterProvider,
    ollama: OllamaProvider,
    fake_openrouter: FakeHandle,
    fake_ollama: FakeHandle,
    fake_openai_compat: FakeHandle,
) -> AsyncIterator[tuple[Provider, FakeHandle]]:
    """Every adapter: the deadlines are the same shared code (``llmts_providers.deadlines``)."""
    if request.param == "openrouter":
        yield openrouter, fake_openrouter
    elif request.param == "ollama":
        yield ollama, fake_ollama
    else:
        p = OpenAICompatibleProvider(base_url=fake_openai_compat.base_url)
        yield p, fake_openai_compat
        await p.aclose()


MODELS = {"openrouter": "openai/gpt-4o-mini", "ollama": "llama3.2", "openai-compatible": "gpt-4o-mini"}


def _req(provider: Provider, **kw: Any) -> ChatRequest:
    model = MODELS[provider.name]
    base: dict[str, Any] = {
        "model": model,
        "messages": [ChatMessage(role="user", content="A title.")],
        "json_schema": SCHEMA,
        "stream": True,
    }
    return ChatRequest(**{**base, **kw})


async def test_a_slow_first_token_fires_the_first_token_deadline(
    any_target: tuple[Provider, FakeHandle],
) -> None:
    provider, fake = any_target
    fake.configure(latency_ms=1500)
    with pytest.raises(ProviderTimeout) as info:
        await provider.chat(_req(provider, first_token_timeout_s=0.3, idle_timeout_s=5))
    assert "first-token timeout" in info.value.message
    assert info.value.retryable


async def test_a_stall_mid_stream_fires_the_idle_deadline(any_target: tuple[Provider, FakeHandle]) -> None:
    provider, fake = any_target
    fake.configure(stream_chunk_chars=4, stall_after_chunks=2, stall_ms=2000)
    with pytest.raises(ProviderTimeout) as info:
        await provider.chat(_req(provider, first_token_timeout_s=5, idle_timeout_s=0.4))
    assert "idle timeout" in info.value.message
    assert "after" in info.value.message


async def test_a_long_answer_that_keeps_coming_is_not_cut(any_target: tuple[Provider, FakeHandle]) -> None:
    """~15 content chunks 100 ms apart: the answer takes well over the 0.4 s idle deadline (sleeps are lower
    bounds), every gap stays under it."""
    provider, fake = any_target
    fake.configure(stream_chunk_chars=4, chunk_interval_ms=100)
    t0 = time.perf_counter()
    result = await provider.chat(_req(provider, first_token_timeout_s=5, idle_timeout_s=0.4))
    took = time.perf_counter() - t0
    assert result.finish_reason == "stop"
    assert len(result.text) >= 40  # the whole title arrived, in 4-character chunks
    assert result.first_token_ms is not None
    print(
        f"{provider.name}: streamed answer took {took:.2f} s (idle deadline 0.4 s), first token {result.first_token_ms:.0f} ms"
    )


async def test_first_token_is_reported_for_streams_only(any_target: tuple[Provider, FakeHandle]) -> None:
    provider, fake = any_target
    fake.configure(latency_ms=50)
    heard: list[str] = []
    with first_token_listener(lambda: heard.append("first token")):
        streamed = await provider.chat(_req(provider))
        whole = await provider.chat(_req(provider, stream=False))
    assert heard == ["first token"]
    assert streamed.first_token_ms is not None
    assert streamed.first_token_ms <= streamed.latency_ms
    assert whole.first_token_ms is None
    print(f"{provider.name}: first token after {streamed.first_token_ms:.0f} ms (latency_ms=50 at the fake)")


async def test_a_non_streamed_call_has_a_total_deadline(any_target: tuple[Provider, FakeHandle]) -> None:
    provider, fake = any_target
    fake.configure(latency_ms=1500)
    with pytest.raises(ProviderTimeout):
        await provider.chat(_req(provider, stream=False, timeout_s=0.3))


async def test_hidden_capacity_refuses_calls_beyond_it(target: tuple[Provider, FakeHandle]) -> None:
    """Two places, three calls at once: one is refused at once (OpenRouter 429, Ollama 503), without Retry-After."""
    provider, fake = target
    await _idle(fake)
    fake.configure(max_concurrency=2, latency_ms=300)
    results = await asyncio.gather(
        *(provider.chat(_req(provider, stream=False)) for _ in range(3)), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 1, results
    expected = RateLimited if provider.name == "openrouter" else ProviderUnavailable
    assert isinstance(refused[0], expected)
    assert refused[0].retry_after is None
    stats = fake.stats()
    assert stats["max_active"] == 2
    assert stats["calls"] == 3
    assert stats["active"] == 0


async def test_queued_calls_wait_for_their_first_token(target: tuple[Provider, FakeHandle]) -> None:
    """One place, queueing like a one-slot Ollama: the calls are served one after the other, and the wait in the
    queue is part of each call's time to first token."""
    provider, fake = target
    await _idle(fake)
    fake.configure(max_concurrency=1, over_capacity="queue", latency_ms=200)
    results = await asyncio.gather(*(provider.chat(_req(provider)) for _ in range(3)))
    ttfts = sorted(r.first_token_ms or 0.0 for r in results)
    assert fake.stats()["max_active"] == 1
    assert all(r.finish_reason == "stop" for r in results)
    print(f"{provider.name}: times to first token of 3 queued calls: {[round(t) for t in ttfts]} ms")


async def test_a_queued_call_that_gives_up_leaves_the_queue(target: tuple[Provider, FakeHandle]) -> None:
    provider, fake = target
    await _idle(fake)
    fake.configure(max_concurrency=1, over_capacity="queue", latency_ms=600)
    served = asyncio.create_task(provider.chat(_req(provider)))
    await asyncio.sleep(0.1)
    with pytest.raises(ProviderTimeout):
        await provider.chat(_req(provider, first_token_timeout_s=0.2))
    assert (await served).finish_reason == "stop"
    await _idle(fake)  # the fake notices the hang-up on its next poll of the queue
    assert fake.stats()["queued"] == 0
