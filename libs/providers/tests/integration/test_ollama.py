"""OllamaProvider against the in-process fake Ollama (real HTTP)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from tests.fakes.fixtures import FakeHandle

from llmts_providers import (
    ChatMessage,
    ChatRequest,
    ContextTooLong,
    MidStreamError,
    ModelNotFound,
    OllamaProvider,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "available": {"type": "boolean"},
    },
    "required": ["age", "available"],
}


def _req(**kw: Any) -> ChatRequest:
    base: dict[str, Any] = {
        "model": "ollama/llama3.2",
        "messages": [ChatMessage(role="user", content="Return age and availability as JSON.")],
        "json_schema": SCHEMA,
    }
    return ChatRequest(**{**base, **kw})


async def test_list_and_get_models(ollama: OllamaProvider) -> None:
    records = await ollama.list_models()
    assert [r.id for r in records][:2] == ["llama3.2:latest", "llama3.1:8b"]
    by_id = {r.id: r for r in records}
    assert by_id["llama3.2:latest"].context_length == 131072
    assert by_id["llama3.2:latest"].tools
    assert "image" in by_id["llava:7b"].input_modalities
    assert all(r.free and r.structured_output and r.provider == "ollama" for r in records)
    rec = await ollama.get_model("ollama/llama3.2")
    assert rec.id == "llama3.2:latest"
    assert (await ollama.get_model("qwen2.5:7b")).context_length == 32768
    with pytest.raises(ModelNotFound):
        await ollama.get_model("nope:1b")


@pytest.mark.parametrize("stream", [False, True])
async def test_chat_structured(ollama: OllamaProvider, fake_ollama: FakeHandle, stream: bool) -> None:
    result = await ollama.chat(_req(stream=stream, temperature=0, max_tokens=256))
    jsonschema.validate(json.loads(result.text), SCHEMA)
    assert result.provider == "ollama"
    assert result.model == "llama3.2"
    assert result.finish_reason == "stop"
    assert result.prompt_tokens > 0
    assert result.completion_tokens > 0
    assert result.cost_usd == 0.0
    sent = fake_ollama.stats()["last_requests"][-1]["body"]
    assert sent["format"] == SCHEMA
    assert sent["stream"] is stream
    assert sent["model"] == "llama3.2"
    assert sent["options"] == {"temperature": 0, "num_predict": 256}


async def test_stream_and_non_stream_agree(ollama: OllamaProvider, fake_ollama: FakeHandle) -> None:
    fake_ollama.configure(seed=5, stream_chunk_chars=2)
    once = await ollama.chat(_req())
    fake_ollama.reset()
    fake_ollama.configure(seed=5, stream_chunk_chars=2)
    streamed = await ollama.chat(_req(stream=True))
    assert once.text == streamed.text
    assert (once.prompt_tokens, once.completion_tokens) == (
        streamed.prompt_tokens,
        streamed.completion_tokens,
    )


async def test_free_text(ollama: OllamaProvider) -> None:
    result = await ollama.chat(_req(json_schema=None, stream=True))
    assert result.text
    assert not result.text.startswith("{")


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("invalid_model", ModelNotFound),
        ("context_too_long", ContextTooLong),
        (500, ProviderUnavailable),
        (502, ProviderUnavailable),
        (503, ProviderUnavailable),
    ],
)
async def test_status_errors(
    ollama: OllamaProvider, fake_ollama: FakeHandle, script: Any, expected: type[Exception], stream: bool
) -> None:
    fake_ollama.configure(script=[script])
    with pytest.raises(expected):
        await ollama.chat(_req(stream=stream))


async def test_unknown_model_and_429(ollama: OllamaProvider, fake_ollama: FakeHandle) -> None:
    with pytest.raises(ModelNotFound) as info:
        await ollama.chat(_req(model="mistral-nemo:12b"))
    assert "not found" in info.value.message
    fake_ollama.configure(script=[{"status": 429, "retry_after_s": 2}])
    with pytest.raises(RateLimited) as rl:
        await ollama.chat(_req(stream=True))
    assert rl.value.retry_after == 2.0


async def test_midstream_error(ollama: OllamaProvider, fake_ollama: FakeHandle) -> None:
    fake_ollama.configure(script=["midstream_error"], stream_chunk_chars=3)
    with pytest.raises(MidStreamError) as info:
        await ollama.chat(_req(stream=True))
    assert info.value.partial_text
    assert "error was encountered" in info.value.message


@pytest.mark.parametrize("stream", [False, True])
async def test_disconnect(ollama: OllamaProvider, fake_ollama: FakeHandle, stream: bool) -> None:
    fake_ollama.configure(script=["disconnect"])
    with pytest.raises((ProviderUnavailable, MidStreamError)):
        await ollama.chat(_req(stream=stream))


@pytest.mark.parametrize("stream", [False, True])
async def test_timeout(ollama: OllamaProvider, fake_ollama: FakeHandle, stream: bool) -> None:
    fake_ollama.configure(latency_ms=1500)
    with pytest.raises(ProviderTimeout):
        await ollama.chat(_req(stream=stream, timeout_s=0.3))


async def test_connect_refused_and_connection_test(unused_port_url: str) -> None:
    p = OllamaProvider(base_url=unused_port_url)
    try:
        with pytest.raises(ProviderUnavailable):
            await p.chat(_req())
        with pytest.raises(ProviderUnavailable):
            await p.list_models()
        result = await p.test_connection()
    finally:
        await p.aclose()
    assert not result.reachable
    assert result.error
    assert result.latency_ms is None


async def test_connection_ok(ollama: OllamaProvider) -> None:
    result = await ollama.test_connection()
    assert result.reachable
    assert result.version == "0.12.3"
    assert result.key_valid is None
    assert result.credits is None


async def test_connection_down_is_reachable_but_erroring(
    ollama: OllamaProvider, fake_ollama: FakeHandle
) -> None:
    fake_ollama.configure(down=True)
    result = await ollama.test_connection()
    assert result.reachable  # it answered, with 503
    assert result.error
    assert "503" in result.error
