"""OpenAICompatibleProvider against the in-process fake OpenAI-compatible server (real HTTP, real openai SDK):
the body on the wire, usage and cost, the json_object fallback on a server without json_schema, and every error
shape of the taxonomy (401/403, 404 model, 429 + Retry-After, 5xx, context, timeouts, refused, mid-stream)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
from tests.fakes import openai_compat
from tests.fakes.common import FakeState
from tests.fakes.fixtures import FakeHandle
from tests.fakes.server import start_fake_async

from llmts_providers import (
    AuthFailed,
    BadRequest,
    ChatMessage,
    ChatRequest,
    ContextTooLong,
    MidStreamError,
    ModelNotFound,
    OpenAICompatibleProvider,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from llmts_providers.models import SCHEMA_INSTRUCTION_MARKER
from llmts_providers.settings import TokenPrice

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "minLength": 5},
        "answer": {"type": "string", "enum": ["A", "B", "C", "D"]},
    },
    "required": ["question", "answer"],
    "additionalProperties": False,
}
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
PRICE = TokenPrice(prompt=Decimal("0.2"), completion=Decimal("0.8"))
KEY = "sk-compat-test"


def _req(**kw: Any) -> ChatRequest:
    base: dict[str, Any] = {
        "model": MODEL,
        "messages": [
            ChatMessage(role="system", content="You write quiz items."),
            ChatMessage(role="user", content="One item about rivers."),
        ],
        "json_schema": SCHEMA,
        "max_tokens": 200,
    }
    return ChatRequest(**{**base, **kw})


@pytest.fixture
async def compat(fake_openai_compat: FakeHandle) -> AsyncIterator[OpenAICompatibleProvider]:
    fake_openai_compat.configure(api_key=KEY)
    p = OpenAICompatibleProvider(
        base_url=fake_openai_compat.base_url, api_key=KEY, prices={MODEL: PRICE}, timeout_s=10
    )
    yield p
    await p.aclose()


def _last_body(fake: FakeHandle) -> dict[str, Any]:
    body: dict[str, Any] = fake.stats()["last_requests"][-1]["body"]
    return body


# --- catalog ------------------------------------------------------------------------------------------------
async def test_list_and_get_models(compat: OpenAICompatibleProvider) -> None:
    records = {r.id: r for r in await compat.list_models()}
    assert set(records) == {m["id"] for m in openai_compat.MODELS}
    llama = records[MODEL]
    assert llama.provider == "openai-compatible"
    assert llama.context_length == 8192  # vLLM's max_model_len
    assert llama.pricing.prompt == Decimal("0.2")
    assert records["gpt-4o-mini"].context_length is None  # unknown
    assert records["gpt-4o-mini"].pricing.prompt is None
    assert (await compat.get_model("gpt-4o-mini")).id == "gpt-4o-mini"
    with pytest.raises(ModelNotFound):
        await compat.get_model("no/such-model")


# --- chat ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True])
async def test_structured_chat_usage_and_cost(
    compat: OpenAICompatibleProvider, fake_openai_compat: FakeHandle, stream: bool
) -> None:
    request = _req(stream=stream, temperature=0.3, seed=3)
    result = await compat.chat(request)
    assert _last_body(fake_openai_compat) == compat.build_request_body(request)  # exactly what went out
    jsonschema.validate(json.loads(result.text), SCHEMA)
    assert result.provider == "openai-compatible"
    assert result.model == MODEL
    assert result.finish_reason == "stop"
    assert result.prompt_tokens > 0
    assert result.completion_tokens > 0
    expected = (result.prompt_tokens * PRICE.prompt + result.completion_tokens * PRICE.completion) / 10**6
    assert result.cost_usd == pytest.approx(float(expected))
    assert result.cost_reported
    assert result.generation_id is not None
    assert result.generation_id.startswith("chatcmpl-")


async def test_unpriced_model_costs_zero_unreported(compat: OpenAICompatibleProvider) -> None:
    result = await compat.chat(_req(model="gpt-4o-mini"))
    assert result.prompt_tokens > 0
    assert result.cost_usd == 0.0
    assert not result.cost_reported


async def test_stream_without_usage_chunk_reports_no_cost(compat: OpenAICompatibleProvider) -> None:
    # a server that ignores stream_options sends no usage: tokens unknown (0), cost not known
    result = await compat.chat(_req(stream=True, extra={"stream_options": {"include_usage": False}}))
    jsonschema.validate(json.loads(result.text), SCHEMA)
    assert (result.prompt_tokens, result.completion_tokens) == (0, 0)
    assert not result.cost_reported


async def test_no_key_sends_no_authorization(fake_openai_compat: FakeHandle) -> None:
    p = OpenAICompatibleProvider(base_url=fake_openai_compat.base_url)
    try:
        result = await p.chat(_req(stream=True))
        await p.list_models()
        connection = await p.test_connection()
    finally:
        await p.aclose()
    assert result.text
    seen = [r["headers"]["authorization"] for r in fake_openai_compat.stats()["last_requests"]]
    assert seen == ["absent", "absent", "absent"]
    assert connection.reachable
    assert connection.key_valid is None


async def test_json_object_fallback_on_a_server_without_json_schema() -> None:
    async with start_fake_async(openai_compat.create_app(FakeState(), json_schema=False)) as fake:
        strict = OpenAICompatibleProvider(base_url=fake.base_url + "/v1")
        fallback = OpenAICompatibleProvider(
            base_url=fake.base_url + "/v1", structured_output_models={MODEL: "json_object"}
        )
        try:
            with pytest.raises(BadRequest, match="json_schema"):
                await strict.chat(_req())
            result = await fallback.chat(_req())
        finally:
            await strict.aclose()
            await fallback.aclose()
        body = fake.state.stats()["last_requests"][-1]["body"]
    assert body["response_format"] == {"type": "json_object"}
    assert SCHEMA_INSTRUCTION_MARKER in body["messages"][0]["content"]
    jsonschema.validate(json.loads(result.text), SCHEMA)  # the fake follows the schema it found in the prompt


# --- errors -------------------------------------------------------------------------------------------------
async def test_wrong_key_is_auth_failed(fake_openai_compat: FakeHandle) -> None:
    fake_openai_compat.configure(api_key=KEY)
    p = OpenAICompatibleProvider(base_url=fake_openai_compat.base_url, api_key="sk-wrong")
    try:
        with pytest.raises(AuthFailed) as info:
            await p.chat(_req())
        with pytest.raises(AuthFailed):
            await p.list_models()
        connection = await p.test_connection()
    finally:
        await p.aclose()
    assert info.value.status_code == 401
    assert "Incorrect API key" in info.value.message
    assert "sk-wrong" not in str(info.value)
    assert connection.reachable
    assert connection.key_valid is False


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (403, AuthFailed),
        (404, ModelNotFound),
        (408, ProviderTimeout),
        (422, BadRequest),
        (500, ProviderUnavailable),
        (502, ProviderUnavailable),
        (503, ProviderUnavailable),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_status_errors(
    compat: OpenAICompatibleProvider,
    fake_openai_compat: FakeHandle,
    status: int,
    error: type[Exception],
    stream: bool,
) -> None:
    fake_openai_compat.configure(script=[status])
    with pytest.raises(error) as info:
        await compat.chat(_req(stream=stream))
    assert getattr(info.value, "status_code", None) == status
    assert getattr(info.value, "provider", None) == "openai-compatible"


async def test_429_with_retry_after(compat: OpenAICompatibleProvider, fake_openai_compat: FakeHandle) -> None:
    fake_openai_compat.configure(script=[{"status": 429, "retry_after_s": 7}])
    with pytest.raises(RateLimited) as info:
        await compat.chat(_req())
    assert info.value.retryable
    assert info.value.retry_after == 7.0
    assert "RPM" in info.value.message


async def test_unknown_model_and_context_overflow(compat: OpenAICompatibleProvider) -> None:
    with pytest.raises(ModelNotFound) as info:
        await compat.chat(_req(model="no/such-model"))
    assert info.value.status_code == 404
    with pytest.raises(ContextTooLong):
        await compat.chat(_req(max_tokens=9000))  # over the model's max_model_len of 8192


@pytest.mark.parametrize("stream", [False, True])
async def test_midstream_error_and_error_in_200(
    compat: OpenAICompatibleProvider, fake_openai_compat: FakeHandle, stream: bool
) -> None:
    fake_openai_compat.configure(script=["midstream_error"])
    with pytest.raises(MidStreamError) as info:
        await compat.chat(_req(stream=stream))
    assert info.value.retryable
    assert "crashed" in info.value.message
    if stream:
        assert info.value.partial_text  # what arrived before the error


@pytest.mark.parametrize("stream", [False, True])
async def test_disconnect_is_unavailable(
    compat: OpenAICompatibleProvider, fake_openai_compat: FakeHandle, stream: bool
) -> None:
    fake_openai_compat.configure(script=["disconnect"])
    with pytest.raises(ProviderUnavailable):
        await compat.chat(_req(stream=stream))


@pytest.mark.parametrize("stream", [False, True])
async def test_timeout(
    compat: OpenAICompatibleProvider, fake_openai_compat: FakeHandle, stream: bool
) -> None:
    fake_openai_compat.configure(latency_ms=1500)
    with pytest.raises(ProviderTimeout) as info:
        await compat.chat(_req(stream=stream, timeout_s=0.3))
    assert info.value.retryable


async def test_connection_refused(unused_port_url: str) -> None:
    p = OpenAICompatibleProvider(base_url=unused_port_url + "/v1", connect_timeout_s=2)
    try:
        with pytest.raises(ProviderUnavailable) as info:
            await p.chat(_req())
        assert not isinstance(info.value, ProviderTimeout)
        with pytest.raises(ProviderUnavailable):
            await p.list_models()
        connection = await p.test_connection()
    finally:
        await p.aclose()
    assert not connection.reachable


async def test_down_server_in_connection_test(
    compat: OpenAICompatibleProvider, fake_openai_compat: FakeHandle
) -> None:
    ok = await compat.test_connection()
    assert ok.reachable
    assert ok.key_valid is True
    assert ok.latency_ms is not None
    fake_openai_compat.configure(down=True)
    down = await compat.test_connection()
    assert down.reachable  # it answered, with a 503
    assert down.key_valid is None
    assert down.error is not None
    assert "503" in down.error
