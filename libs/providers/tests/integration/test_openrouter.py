"""OpenRouterProvider against the in-process fake OpenRouter (real HTTP, real openai SDK)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
from tests.fakes.fixtures import FakeHandle

from llmts_providers import (
    AuthFailed,
    ChatMessage,
    ChatRequest,
    ContextTooLong,
    InsufficientCredits,
    MidStreamError,
    ModelNotFound,
    OpenRouterProvider,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "minLength": 5},
        "answer": {"type": "string", "pattern": "^[A-D]$"},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
    },
    "required": ["question", "answer", "tags"],
    "additionalProperties": False,
}
MODEL = "openai/gpt-4o-mini"


def _req(**kw: Any) -> ChatRequest:
    base: dict[str, Any] = {
        "model": MODEL,
        "messages": [
            ChatMessage(role="system", content="You write quiz items."),
            ChatMessage(role="user", content="One item about rivers."),
        ],
        "json_schema": SCHEMA,
    }
    return ChatRequest(**{**base, **kw})


def _fixture_price(fake: FakeHandle, model_id: str) -> tuple[Decimal, Decimal]:
    from tests.fakes.openrouter import load_catalog

    raw = next(m for m in load_catalog() if m["id"] == model_id)
    return Decimal(raw["pricing"]["prompt"]), Decimal(raw["pricing"]["completion"])


# --- catalog ------------------------------------------------------------------------------------------------
async def test_list_and_get_models(openrouter: OpenRouterProvider, fake_openrouter: FakeHandle) -> None:
    records = await openrouter.list_models()
    assert len(records) >= 300
    ids = {r.id for r in records}
    assert {"openai/gpt-4o-mini", "meta-llama/llama-3.3-70b-instruct:free", "openrouter/auto"} <= ids
    assert "black-forest-labs/flux-1.1-pro" not in ids  # /models defaults to text output
    free = next(r for r in records if r.id == "meta-llama/llama-3.3-70b-instruct:free")
    assert free.free
    model = await openrouter.get_model(MODEL)
    assert model.structured_output
    assert model.pricing.prompt == _fixture_price(fake_openrouter, MODEL)[0] * 1_000_000
    with pytest.raises(ModelNotFound):
        await openrouter.get_model("acme/does-not-exist")


async def test_list_models_wrong_key_is_auth_failed(fake_openrouter: FakeHandle) -> None:
    p = OpenRouterProvider(base_url=fake_openrouter.base_url, api_key="sk-or-v1-wrong")
    try:
        with pytest.raises(AuthFailed):
            await p.list_models()
    finally:
        await p.aclose()


# --- chat ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True])
async def test_chat_structured(
    openrouter: OpenRouterProvider, fake_openrouter: FakeHandle, stream: bool
) -> None:
    result = await openrouter.chat(_req(stream=stream, temperature=0.3, max_tokens=500))
    jsonschema.validate(json.loads(result.text), SCHEMA)
    assert result.provider == "openrouter"
    assert result.model == MODEL
    assert result.finish_reason == "stop"
    assert result.generation_id is not None
    assert result.generation_id.startswith("gen-")
    assert result.upstream_provider == "OpenAI"
    assert result.prompt_tokens > 0
    assert result.completion_tokens > 0
    assert result.cost_reported
    p_price, c_price = _fixture_price(fake_openrouter, MODEL)
    expected = float(result.prompt_tokens * p_price + result.completion_tokens * c_price)
    assert result.cost_usd == pytest.approx(expected)
    assert result.latency_ms > 0
    stats = fake_openrouter.stats()
    assert stats["calls"] == 1
    sent = stats["last_requests"][-1]
    assert sent["body"] == openrouter.build_request_body(_req(stream=stream, temperature=0.3, max_tokens=500))
    assert sent["headers"]["http-referer"] == "https://llmts.example"
    assert sent["headers"]["x-openrouter-title"] == "LLM Template System"
    assert stats["cost_usd"] == pytest.approx(result.cost_usd)


@pytest.mark.parametrize("shape", ["empty_choices", "empty_delta"])
async def test_stream_usage_chunk_shapes(
    openrouter: OpenRouterProvider, fake_openrouter: FakeHandle, shape: str
) -> None:
    fake_openrouter.configure(usage_chunk_shape=shape, stream_chunk_chars=3)
    streamed = await openrouter.chat(_req(stream=True))
    assert streamed.prompt_tokens > 0
    assert streamed.completion_tokens > 0
    assert streamed.cost_usd > 0
    assert streamed.finish_reason == "stop"
    jsonschema.validate(json.loads(streamed.text), SCHEMA)


async def test_stream_and_non_stream_results_agree(
    openrouter: OpenRouterProvider, fake_openrouter: FakeHandle
) -> None:
    fake_openrouter.configure(seed=11)
    once = await openrouter.chat(_req())
    fake_openrouter.reset()
    fake_openrouter.configure(seed=11)
    streamed = await openrouter.chat(_req(stream=True))
    assert once.text == streamed.text
    assert (once.prompt_tokens, once.completion_tokens, once.cost_usd) == (
        streamed.prompt_tokens,
        streamed.completion_tokens,
        streamed.cost_usd,
    )


async def test_json_object_fallback_schema_in_prompt(
    openrouter: OpenRouterProvider, fake_openrouter: FakeHandle
) -> None:
    result = await openrouter.chat(_req(supports_structured_output=False))
    jsonschema.validate(json.loads(result.text), SCHEMA)
    body = fake_openrouter.stats()["last_requests"][-1]["body"]
    assert body["response_format"] == {"type": "json_object"}


async def test_free_text_and_free_model(openrouter: OpenRouterProvider) -> None:
    result = await openrouter.chat(_req(json_schema=None, model="meta-llama/llama-3.3-70b-instruct:free"))
    assert result.text
    assert result.cost_usd == 0.0
    assert result.cost_reported


async def test_consecutive_items_differ(openrouter: OpenRouterProvider) -> None:
    texts = [(await openrouter.chat(_req())).text for _ in range(5)]
    assert len(set(texts)) == 5


async def test_content_faults(openrouter: OpenRouterProvider, fake_openrouter: FakeHandle) -> None:
    fake_openrouter.configure(script=["ok", "duplicate", "code_fence", "invalid_json", "length"])
    first = await openrouter.chat(_req())
    assert (await openrouter.chat(_req())).text == first.text
    fenced = (await openrouter.chat(_req())).text
    assert "```json" in fenced
    inner = fenced.split("```json", 1)[1].split("```", 1)[0]
    jsonschema.validate(json.loads(inner), SCHEMA)
    broken = (await openrouter.chat(_req())).text
    try:
        ok = jsonschema.Draft202012Validator(SCHEMA).is_valid(json.loads(broken))
    except ValueError:
        ok = False
    assert not ok
    truncated = await openrouter.chat(_req())
    assert truncated.finish_reason == "length"


# --- errors -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True])
async def test_429_with_retry_after(
    openrouter: OpenRouterProvider, fake_openrouter: FakeHandle, stream: bool
) -> None:
    fake_openrouter.configure(script=[{"status": 429, "retry_after_s": 7}])
    with pytest.raises(RateLimited) as info:
        await openrouter.chat(_req(stream=stream))
    assert info.value.retry_after == 7.0
    assert info.value.retryable
    assert info.value.status_code == 429
    assert fake_openrouter.stats()["calls"] == 1  # SDK retries are off


async def test_429_with_http_date_and_with_reset_only(
    openrouter: OpenRouterProvider, fake_openrouter: FakeHandle
) -> None:
    fake_openrouter.configure(
        script=[
            {"status": 429, "retry_after_s": 30, "http_date": True},
            {"status": 429, "retry_after_s": None},
        ]
    )
    with pytest.raises(RateLimited) as info:
        await openrouter.chat(_req())
    assert info.value.retry_after == pytest.approx(30, abs=2)
    with pytest.raises(RateLimited) as info:
        await openrouter.chat(_req())
    assert info.value.retry_after == pytest.approx(60, abs=2)  # from X-RateLimit-Reset (epoch ms)


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (402, InsufficientCredits),
        (401, AuthFailed),
        (403, AuthFailed),
        (404, ModelNotFound),
        ("invalid_model", ModelNotFound),
        ("context_too_long", ContextTooLong),
        (500, ProviderUnavailable),
        (502, ProviderUnavailable),
        (503, ProviderUnavailable),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_status_errors(
    openrouter: OpenRouterProvider,
    fake_openrouter: FakeHandle,
    script: Any,
    expected: type[Exception],
    stream: bool,
) -> None:
    fake_openrouter.configure(script=[script])
    with pytest.raises(expected):
        await openrouter.chat(_req(stream=stream))


async def test_real_context_overflow_and_unknown_model(openrouter: OpenRouterProvider) -> None:
    with pytest.raises(ContextTooLong) as info:
        await openrouter.chat(_req(messages=[ChatMessage(role="user", content="x" * 4_000_000)]))
    assert not info.value.retryable
    with pytest.raises(ModelNotFound):
        await openrouter.chat(_req(model="acme/fake-1.0"))


async def test_wrong_key_is_auth_failed(fake_openrouter: FakeHandle) -> None:
    p = OpenRouterProvider(base_url=fake_openrouter.base_url, api_key="sk-or-v1-wrong")
    try:
        with pytest.raises(AuthFailed):
            await p.chat(_req())
    finally:
        await p.aclose()


async def test_midstream_error_in_stream(openrouter: OpenRouterProvider, fake_openrouter: FakeHandle) -> None:
    fake_openrouter.configure(script=["midstream_error"], stream_chunk_chars=4)
    with pytest.raises(MidStreamError) as info:
        await openrouter.chat(_req(stream=True))
    assert info.value.retryable
    assert info.value.partial_text  # content had started
    assert "mid-stream" in info.value.message


async def test_error_in_200_body(openrouter: OpenRouterProvider, fake_openrouter: FakeHandle) -> None:
    fake_openrouter.configure(script=["error_200"])
    with pytest.raises(MidStreamError) as info:
        await openrouter.chat(_req())
    assert "Provider returned error" in info.value.message


@pytest.mark.parametrize("stream", [False, True])
async def test_disconnect_is_unavailable(
    openrouter: OpenRouterProvider, fake_openrouter: FakeHandle, stream: bool
) -> None:
    fake_openrouter.configure(script=["disconnect"])
    with pytest.raises(ProviderUnavailable):
        await openrouter.chat(_req(stream=stream))


@pytest.mark.parametrize("stream", [False, True])
async def test_timeout(openrouter: OpenRouterProvider, fake_openrouter: FakeHandle, stream: bool) -> None:
    fake_openrouter.configure(latency_ms=1500)
    with pytest.raises(ProviderTimeout) as info:
        await openrouter.chat(_req(stream=stream, timeout_s=0.3))
    assert info.value.retryable


async def test_connect_refused(unused_port_url: str) -> None:
    p = OpenRouterProvider(base_url=unused_port_url + "/api/v1", api_key="k")
    try:
        with pytest.raises(ProviderUnavailable) as info:
            await p.chat(_req())
        assert not isinstance(info.value, ProviderTimeout)
        with pytest.raises(ProviderUnavailable):
            await p.list_models()
    finally:
        await p.aclose()


async def test_down_mode(openrouter: OpenRouterProvider, fake_openrouter: FakeHandle) -> None:
    fake_openrouter.configure(down=True, retry_after_s=4)
    with pytest.raises(ProviderUnavailable) as info:
        await openrouter.chat(_req())
    assert info.value.status_code == 503
    with pytest.raises(ProviderUnavailable):
        await openrouter.list_models()


# --- connection test ----------------------------------------------------------------------------------------
async def test_connection_ok(openrouter: OpenRouterProvider, fake_openrouter: FakeHandle) -> None:
    fake_openrouter.configure(credits_limit=100.0)
    result = await openrouter.test_connection()
    assert result.reachable
    assert result.key_valid is True
    assert result.credits is not None
    assert result.credits["limit"] == 100.0
    assert result.credits["limit_remaining"] == 100.0
    assert result.latency_ms is not None
    assert result.error is None


async def test_connection_bad_key_and_no_key(fake_openrouter: FakeHandle) -> None:
    for key in ("sk-or-v1-wrong", None):
        p = OpenRouterProvider(base_url=fake_openrouter.base_url, api_key=key)
        try:
            result = await p.test_connection()
        finally:
            await p.aclose()
        assert result.reachable
        assert result.key_valid is False
        assert result.error


async def test_connection_unreachable(unused_port_url: str) -> None:
    p = OpenRouterProvider(base_url=unused_port_url + "/api/v1", api_key="k")
    try:
        result = await p.test_connection()
    finally:
        await p.aclose()
    assert not result.reachable
    assert result.error
    assert result.key_valid is None


def test_repr_hides_key() -> None:
    p = OpenRouterProvider(api_key="sk-or-v1-topsecret")
    assert "topsecret" not in repr(p)
