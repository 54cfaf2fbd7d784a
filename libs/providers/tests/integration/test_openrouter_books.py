"""Prompt caching and cost reconciliation against the fake OpenRouter: ``cache_control`` breakpoints, cached tokens
read from ``usage``, and ``GET /generation?id=`` (the provider's own record of a generation)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.fakes.fixtures import FakeHandle

from llmts_providers import ChatMessage, ChatRequest, OpenRouterProvider, ProviderError
from llmts_providers.errors import ProviderTimeout

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
SYSTEM = "You name cities. " * 40


def _req(model: str, user: str, **kw: Any) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=[ChatMessage(role="system", content=SYSTEM), ChatMessage(role="user", content=user)],
        json_schema=SCHEMA,
        **kw,
    )


@pytest.mark.parametrize("stream", [False, True])
async def test_breakpoint_caches_the_system_message_and_costs_less(
    openrouter: OpenRouterProvider, fake_openrouter: FakeHandle, stream: bool
) -> None:
    model = "anthropic/claude-3.5-sonnet"
    first = await openrouter.chat(_req(model, "one", cache_prompt=True, stream=stream))
    second = await openrouter.chat(_req(model, "two", cache_prompt=True, stream=stream))
    assert first.cached_tokens == 0
    assert first.cache_write_tokens > 0
    assert second.cached_tokens == first.cache_write_tokens
    assert second.cache_write_tokens == 0
    assert second.cached_tokens < second.prompt_tokens
    assert second.cost_usd < first.cost_usd
    sent = fake_openrouter.state.last_requests[-1]["body"]["messages"][0]["content"]
    assert sent[0]["cache_control"] == {"type": "ephemeral"}
    assert sent[0]["text"].startswith(SYSTEM)


async def test_no_breakpoint_no_cache_for_models_that_need_one(
    openrouter: OpenRouterProvider, fake_openrouter: FakeHandle
) -> None:
    model = "anthropic/claude-3.5-sonnet"
    await openrouter.chat(_req(model, "one"))
    again = await openrouter.chat(_req(model, "two"))
    assert again.cached_tokens == 0
    assert isinstance(fake_openrouter.state.last_requests[-1]["body"]["messages"][0]["content"], str)


def test_breakpoint_only_for_the_families_that_need_one(openrouter: OpenRouterProvider) -> None:
    for model, marked in (
        ("anthropic/claude-3.5-sonnet", True),
        ("google/gemini-2.5-flash", True),
        ("openai/gpt-4o-mini", False),
    ):
        body = openrouter.build_request_body(_req(model, "x", cache_prompt=True))
        content = body["messages"][0]["content"]
        assert isinstance(content, list) is marked, model
        assert isinstance(body["messages"][1]["content"], str)  # the per-item part is never marked


async def test_generation_stats_match_the_billed_cost(
    openrouter: OpenRouterProvider, fake_openrouter: FakeHandle
) -> None:
    result = await openrouter.chat(_req("openai/gpt-4o-mini", "one"))
    assert result.generation_id
    stats = await openrouter.generation_stats(result.generation_id)
    assert stats is not None
    assert stats.id == result.generation_id
    assert stats.total_cost_usd == pytest.approx(result.cost_usd)
    assert (stats.prompt_tokens, stats.completion_tokens) == (result.prompt_tokens, result.completion_tokens)
    assert stats.model == "openai/gpt-4o-mini"
    assert stats.streamed is False
    assert stats.cancelled is False


async def test_generation_stats_of_an_unknown_generation_is_none(openrouter: OpenRouterProvider) -> None:
    assert await openrouter.generation_stats("gen-0-doesnotexist") is None


@pytest.mark.parametrize("kind", ["disconnect", "midstream_error"])
async def test_a_cut_stream_keeps_its_generation_id_and_the_books_have_its_cost(
    openrouter: OpenRouterProvider, fake_openrouter: FakeHandle, kind: str
) -> None:
    fake_openrouter.configure(script=[kind])
    with pytest.raises(ProviderError) as failed:
        await openrouter.chat(_req("openai/gpt-4o-mini", "one", stream=True))
    gen_id = failed.value.generation_id
    assert gen_id
    assert gen_id.startswith("gen-")
    stats = await openrouter.generation_stats(gen_id)
    assert stats is not None
    assert stats.total_cost_usd > 0


async def test_an_idle_timeout_keeps_the_generation_id(
    openrouter: OpenRouterProvider, fake_openrouter: FakeHandle
) -> None:
    fake_openrouter.configure(stall_ms=1500, stall_after_chunks=1)
    with pytest.raises(ProviderTimeout) as failed:
        await openrouter.chat(_req("openai/gpt-4o-mini", "one", stream=True, idle_timeout_s=0.3))
    assert failed.value.generation_id
    assert failed.value.generation_id.startswith("gen-")


async def test_an_error_before_the_first_chunk_has_no_generation_id(
    openrouter: OpenRouterProvider, fake_openrouter: FakeHandle
) -> None:
    fake_openrouter.configure(script=["503"])
    with pytest.raises(ProviderError) as failed:
        await openrouter.chat(_req("openai/gpt-4o-mini", "one", stream=True))
    assert failed.value.generation_id is None
