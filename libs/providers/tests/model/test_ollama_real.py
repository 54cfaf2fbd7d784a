"""The Ollama adapter against a real Ollama server serving SmolLM2-135M (the embedded local model that
`make test` starts with scripts/local_model.sh): model listing from the real /api/tags + /api/show, structured
output through `format`, streaming and non-streaming, token counts from the real counters, cancel mid-stream.

Bounded: every call caps `num_predict`; the model is tiny, so content is checked for shape, not for quality.
"""

from __future__ import annotations

import asyncio
import json
import os

import httpx
import pytest

from llmts_providers.errors import ProviderTimeout
from llmts_providers.models import ChatMessage, ChatRequest, ChatResult
from llmts_providers.ollama import OllamaProvider

pytestmark = pytest.mark.model

BASE_URL = os.environ.get("LOCAL_MODEL_URL", "http://127.0.0.1:11434")
MODEL = os.environ.get("LOCAL_MODEL_NAME", "smollm2:135m")
SCHEMA = {
    "type": "object",
    "properties": {"country": {"type": "string"}, "capital": {"type": "string"}},
    "required": ["country", "capital"],
    "additionalProperties": False,
}


def request(*, stream: bool, max_tokens: int = 48, schema: dict[str, object] | None = SCHEMA) -> ChatRequest:
    return ChatRequest(
        model=MODEL,
        messages=[
            ChatMessage(role="system", content="You answer with one JSON object."),
            ChatMessage(role="user", content="Name one European country and its capital."),
        ],
        temperature=0.2,
        max_tokens=max_tokens,
        seed=7,
        json_schema=schema,
        stream=stream,
    )


@pytest.fixture
async def ollama() -> OllamaProvider:
    provider = OllamaProvider(base_url=BASE_URL, timeout_s=120.0)
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            version = await client.get(f"{BASE_URL}/api/version")
    except httpx.HTTPError as exc:
        pytest.fail(f"the local model server is not running at {BASE_URL} (scripts/local_model.sh up): {exc}")
    assert version.status_code == 200, version.text
    return provider


async def test_list_models_reads_real_tags_and_show(ollama: OllamaProvider) -> None:
    models = {m.id: m for m in await ollama.list_models()}
    await ollama.aclose()
    assert MODEL in models, sorted(models)
    record = models[MODEL]
    assert record.provider == "ollama"
    assert record.free
    assert record.pricing.prompt == 0
    assert record.context_length is not None
    assert record.context_length >= 2048
    assert "llama" in record.description  # family from the real details
    assert record.raw["show"]["details"]["quantization_level"] == "Q4_1"


async def test_structured_chat_non_streaming_counts_real_tokens(ollama: OllamaProvider) -> None:
    result = await ollama.chat(request(stream=False))
    await ollama.aclose()
    item = json.loads(result.text)
    assert set(item) == {"country", "capital"}, item  # the grammar follows the schema's keys
    assert result.prompt_tokens > 10  # prompt_eval_count of the real server
    assert 0 < result.completion_tokens <= 48  # eval_count, capped by num_predict
    assert result.cost_usd == 0.0
    assert result.provider == "ollama"
    print(f"non-streaming: {result.latency_ms:.0f} ms, {result.completion_tokens} tokens")


async def test_streaming_chat_assembles_ndjson_and_reports_usage(ollama: OllamaProvider) -> None:
    result = await ollama.chat(request(stream=True))
    await ollama.aclose()
    item = json.loads(result.text)
    assert isinstance(item.get("country"), str)
    assert isinstance(item.get("capital"), str)
    assert result.prompt_tokens > 10
    assert result.completion_tokens > 0
    assert result.finish_reason in ("stop", "length")


async def test_num_predict_caps_a_free_text_answer(ollama: OllamaProvider) -> None:
    capped = request(stream=False, max_tokens=5, schema=None).model_copy(
        update={"messages": [ChatMessage(role="user", content="Write a long story about the sea.")]}
    )
    result = await ollama.chat(capped)
    await ollama.aclose()
    assert result.completion_tokens <= 5
    assert result.finish_reason == "length"


async def test_cancel_mid_stream_frees_the_server(ollama: OllamaProvider) -> None:
    long = request(stream=True, max_tokens=400, schema=None).model_copy(
        update={"messages": [ChatMessage(role="user", content="Count from 1 to 300, one number per line.")]}
    )
    task = asyncio.create_task(ollama.chat(long))
    await asyncio.sleep(2.0)  # the stream is producing tokens by now
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # the server is one request at a time here: a short call right after must not wait for the abandoned 400 tokens
    result = await ollama.chat(request(stream=False, max_tokens=24))
    await ollama.aclose()
    assert result.completion_tokens <= 24
    print(f"after cancel: next call took {result.latency_ms:.0f} ms")


async def test_a_progressing_generation_longer_than_the_idle_timeout_is_not_cut(
    ollama: OllamaProvider,
) -> None:
    """300 tokens at this machine's ≤ 25 tokens/s take 12 s or more, longer than the 10 s idle deadline; every
    token arrives within it (gaps are ~40 ms, up to a few seconds when other work loads the 2 cores), so the
    answer is complete: a stream has no total deadline."""
    long = request(stream=True, max_tokens=300, schema=None).model_copy(
        update={
            "messages": [ChatMessage(role="user", content="Count from 1 to 300, one number per line.")],
            "idle_timeout_s": 10.0,
            "first_token_timeout_s": 60.0,
        }
    )
    result = await ollama.chat(long)
    await ollama.aclose()
    assert result.completion_tokens >= 250
    assert result.finish_reason in ("stop", "length")
    assert result.first_token_ms is not None
    print(
        f"streamed {result.completion_tokens} tokens in {result.latency_ms / 1000:.1f} s with a 10 s idle deadline; "
        f"first token after {result.first_token_ms:.0f} ms"
    )


async def test_waiting_in_the_server_queue_counts_toward_the_first_token(ollama: OllamaProvider) -> None:
    """The server serves one request at a time here: a call queued behind a long answer gets its first token only
    when that answer ends, so a short first-token deadline fires while the long answer goes on undisturbed."""
    long = request(stream=True, max_tokens=200, schema=None).model_copy(
        update={"messages": [ChatMessage(role="user", content="Count from 1 to 300, one number per line.")]}
    )
    served = asyncio.create_task(ollama.chat(long))
    await asyncio.sleep(1.5)  # the long answer is being generated by now
    outcome: ChatResult | ProviderTimeout
    try:
        outcome = await ollama.chat(
            request(stream=True, max_tokens=8).model_copy(update={"first_token_timeout_s": 1.0})
        )
    except ProviderTimeout as exc:
        outcome = exc
    if isinstance(outcome, ChatResult):
        served.cancel()
        await ollama.aclose()
        pytest.skip(
            f"this server serves requests in parallel (first token after {outcome.first_token_ms:.0f} ms)"
        )
    assert "first-token timeout" in outcome.message
    result = await served
    await ollama.aclose()
    assert result.completion_tokens > 8
    print(
        f"long answer: {result.completion_tokens} tokens in {result.latency_ms / 1000:.1f} s, not disturbed"
    )
