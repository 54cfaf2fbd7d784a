"""The OpenAI-compatible adapter against a real OpenAI-compatible server: the local Ollama's ``/v1`` endpoints
serving SmolLM2-135M (the embedded local model that `make test` starts with scripts/local_model.sh). Model list
from the real ``/v1/models``, structured output through ``response_format`` json_schema (and json_object with the
schema in the prompt), SSE streaming with the usage chunk, cost from configured prices, a real 404.

Bounded: every call caps ``max_tokens``; the model is tiny, so content is checked for shape, not for quality.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from llmts_providers import ChatMessage, ChatRequest, ModelNotFound, OpenAICompatibleProvider
from llmts_providers.settings import StructuredOutputMode, TokenPrice

pytestmark = pytest.mark.model

ROOT_URL = os.environ.get("LOCAL_MODEL_URL", "http://127.0.0.1:11434")
BASE_URL = f"{ROOT_URL}/v1"
MODEL = os.environ.get("LOCAL_MODEL_NAME", "smollm2:135m")
PRICE = TokenPrice(
    prompt=Decimal("0.5"), completion=Decimal("1.5")
)  # made up: the cost arithmetic is the point
SCHEMA = {
    "type": "object",
    "properties": {"country": {"type": "string"}, "capital": {"type": "string"}},
    "required": ["country", "capital"],
    "additionalProperties": False,
}


def request(*, stream: bool, max_tokens: int = 40, model: str = MODEL) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=[
            ChatMessage(role="system", content="You answer with one JSON object."),
            ChatMessage(role="user", content="Name one European country and its capital."),
        ],
        temperature=0.2,
        max_tokens=max_tokens,
        seed=7,
        json_schema=SCHEMA,
        stream=stream,
    )


def provider(mode: StructuredOutputMode = "json_schema") -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(
        base_url=BASE_URL, structured_output=mode, prices={MODEL: PRICE}, timeout_s=120.0
    )


@pytest.fixture
async def compat() -> AsyncIterator[OpenAICompatibleProvider]:
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            (await client.get(f"{BASE_URL}/models")).raise_for_status()
    except httpx.HTTPError as exc:
        pytest.fail(f"the local model server is not serving {BASE_URL} (scripts/local_model.sh up): {exc}")
    p = provider()
    yield p
    await p.aclose()


def expected_cost(prompt_tokens: int, completion_tokens: int) -> float:
    return float((prompt_tokens * PRICE.prompt + completion_tokens * PRICE.completion) / 10**6)


async def test_list_models_from_the_real_v1_models(compat: OpenAICompatibleProvider) -> None:
    models = {m.id: m for m in await compat.list_models()}
    assert MODEL in models, sorted(models)
    record = models[MODEL]
    assert record.provider == "openai-compatible"
    assert record.context_length is None  # Ollama's /v1/models does not say
    assert record.created is not None
    assert record.structured_output
    assert record.pricing.prompt == PRICE.prompt
    connection = await compat.test_connection()
    assert connection.reachable
    assert connection.key_valid is None  # no key configured


async def test_structured_non_streaming_with_usage_and_cost(compat: OpenAICompatibleProvider) -> None:
    result = await compat.chat(request(stream=False))
    item = json.loads(result.text)
    assert set(item) == {"country", "capital"}, item  # the server's grammar follows the schema's keys
    assert result.prompt_tokens > 10
    assert 0 < result.completion_tokens <= 40
    assert result.cost_reported
    assert result.cost_usd == pytest.approx(expected_cost(result.prompt_tokens, result.completion_tokens))
    print(
        f"non-streaming: {result.latency_ms:.0f} ms, {result.completion_tokens} tokens, ${result.cost_usd:.8f}"
    )


async def test_streaming_reads_sse_and_the_usage_chunk(compat: OpenAICompatibleProvider) -> None:
    result = await compat.chat(request(stream=True))
    item = json.loads(result.text)
    assert isinstance(item.get("country"), str)
    assert isinstance(item.get("capital"), str)
    assert result.prompt_tokens > 10  # from the final usage chunk (stream_options.include_usage)
    assert 0 < result.completion_tokens <= 40
    assert result.finish_reason in ("stop", "length")
    assert result.cost_usd == pytest.approx(expected_cost(result.prompt_tokens, result.completion_tokens))


async def test_json_object_mode_with_the_schema_in_the_prompt() -> None:
    p = provider("json_object")
    try:
        result = await p.chat(request(stream=False, max_tokens=60))
    finally:
        await p.aclose()
    assert isinstance(json.loads(result.text), dict)  # JSON mode: an object, keys up to the model
    assert 0 < result.completion_tokens <= 60


async def test_unknown_model_is_a_real_404(compat: OpenAICompatibleProvider) -> None:
    with pytest.raises(ModelNotFound) as info:
        await compat.chat(request(stream=False, max_tokens=5, model="no-such-model:1b"))
    assert info.value.status_code == 404
    assert "no-such-model" in info.value.message
