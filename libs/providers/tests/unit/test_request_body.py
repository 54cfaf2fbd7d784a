"""Request-body building for both providers (no I/O)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from llmts_providers import ChatMessage, ChatRequest, OllamaProvider, OpenRouterProvider
from llmts_providers.models import SCHEMA_INSTRUCTION_MARKER

pytestmark = pytest.mark.unit

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}


def _req(**kw: Any) -> ChatRequest:
    base: dict[str, Any] = {
        "model": "openai/gpt-4o-mini",
        "messages": [
            ChatMessage(role="system", content="You are terse."),
            ChatMessage(role="user", content="Go"),
        ],
    }
    return ChatRequest(**{**base, **kw})


@pytest.fixture
async def openrouter() -> AsyncIterator[OpenRouterProvider]:
    p = OpenRouterProvider(base_url="http://127.0.0.1:9/api/v1", api_key="sk-or-v1-x")
    yield p
    await p.aclose()


@pytest.fixture
async def ollama() -> AsyncIterator[OllamaProvider]:
    p = OllamaProvider(base_url="http://127.0.0.1:9", keep_alive="10m")
    yield p
    await p.aclose()


def test_openrouter_minimal_body_omits_unset_fields(openrouter: OpenRouterProvider) -> None:
    body = openrouter.build_request_body(_req())
    assert body == {
        "model": "openai/gpt-4o-mini",
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Go"}],
        "stream": False,
        "usage": {"include": True},
    }


def test_openrouter_structured_output_uses_json_schema(openrouter: OpenRouterProvider) -> None:
    body = openrouter.build_request_body(
        _req(json_schema=SCHEMA, schema_name="verdict", temperature=0.2, max_tokens=800, seed=7)
    )
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "verdict", "strict": True, "schema": SCHEMA},
    }
    assert body["provider"] == {"require_parameters": True}
    assert (body["temperature"], body["max_tokens"], body["seed"]) == (0.2, 800, 7)
    assert body["messages"][0]["content"] == "You are terse."  # prompt untouched


def test_openrouter_non_strict_schema(openrouter: OpenRouterProvider) -> None:
    body = openrouter.build_request_body(_req(json_schema=SCHEMA, strict=False))
    assert body["response_format"]["json_schema"]["strict"] is False


def test_openrouter_fallback_to_json_object_appends_schema_to_system(openrouter: OpenRouterProvider) -> None:
    body = openrouter.build_request_body(_req(json_schema=SCHEMA, supports_structured_output=False))
    assert body["response_format"] == {"type": "json_object"}
    assert "provider" not in body
    system = body["messages"][0]
    assert system["role"] == "system"
    assert system["content"].startswith("You are terse.")
    assert SCHEMA_INSTRUCTION_MARKER in system["content"]
    assert '"required":["ok"]' in system["content"]


def test_openrouter_fallback_inserts_system_message_when_missing(openrouter: OpenRouterProvider) -> None:
    req = ChatRequest(
        model="m/x",
        messages=[ChatMessage(role="user", content="Go")],
        json_schema=SCHEMA,
        supports_structured_output=False,
    )
    body = openrouter.build_request_body(req)
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][0]["content"].startswith(SCHEMA_INSTRUCTION_MARKER)
    # the request itself is not mutated
    assert len(req.messages) == 1


def test_openrouter_stream_and_extra(openrouter: OpenRouterProvider) -> None:
    body = openrouter.build_request_body(
        _req(
            stream=True,
            json_schema=SCHEMA,
            extra={"provider": {"order": ["openai"]}, "plugins": [{"id": "web"}], "user": "u-1"},
        )
    )
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["provider"] == {"require_parameters": True, "order": ["openai"]}
    assert body["plugins"] == [{"id": "web"}]
    assert body["user"] == "u-1"


def test_ollama_body(ollama: OllamaProvider) -> None:
    body = ollama.build_request_body(
        _req(model="ollama/llama3.2", json_schema=SCHEMA, temperature=0, max_tokens=256, seed=42)
    )
    assert body == {
        "model": "llama3.2",
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Go"}],
        "stream": False,
        "options": {"temperature": 0, "num_predict": 256, "seed": 42},
        "format": SCHEMA,
        "keep_alive": "10m",
    }


def test_ollama_body_stream_and_extra_options_merge(ollama: OllamaProvider) -> None:
    body = ollama.build_request_body(
        _req(
            model="qwen2.5:7b",
            stream=True,
            temperature=0.5,
            extra={"options": {"num_ctx": 8192}, "think": False},
        )
    )
    assert body["stream"] is True
    assert body["options"] == {"temperature": 0.5, "num_ctx": 8192}
    assert body["think"] is False
    assert "format" not in body


def test_ollama_structured_flag_does_not_change_format(ollama: OllamaProvider) -> None:
    body = ollama.build_request_body(
        _req(model="llama3.2", json_schema=SCHEMA, supports_structured_output=False)
    )
    assert body["format"] == SCHEMA
