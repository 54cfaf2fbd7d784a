"""The OpenAI-compatible adapter without I/O: request mapping (json_schema, json_object fallback, prompt only),
prices → cost, catalog records, settings parsing, factory selection, an unconfigured provider."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from llmts_providers import (
    ChatMessage,
    ChatRequest,
    ModelRecord,
    OpenAICompatibleProvider,
    ProviderFactory,
    ProviderSettings,
    ProviderUnavailable,
)
from llmts_providers.models import SCHEMA_INSTRUCTION_MARKER
from llmts_providers.settings import TokenPrice

pytestmark = pytest.mark.unit

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}
BASE = "http://127.0.0.1:9/v1"


def _req(**kw: Any) -> ChatRequest:
    base: dict[str, Any] = {
        "model": "qwen2.5-7b-instruct",
        "messages": [
            ChatMessage(role="system", content="You are terse."),
            ChatMessage(role="user", content="Go"),
        ],
    }
    return ChatRequest(**{**base, **kw})


@pytest.fixture
async def provider() -> AsyncIterator[OpenAICompatibleProvider]:
    p = OpenAICompatibleProvider(
        base_url=BASE + "/",
        api_key="sk-test",
        structured_output_models={"llama-cpp-old": "json_object", "tgi-model": "prompt"},
        prices={"gpt-4o-mini": TokenPrice(prompt=Decimal("0.15"), completion=Decimal("0.6"))},
    )
    yield p
    await p.aclose()


# --- request mapping ----------------------------------------------------------------------------------------
def test_minimal_body_has_no_openrouter_extensions(provider: OpenAICompatibleProvider) -> None:
    assert provider.base_url == BASE
    assert provider.build_request_body(_req()) == {
        "model": "qwen2.5-7b-instruct",
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Go"}],
        "stream": False,
    }


def test_json_schema_mode_sends_response_format_json_schema(provider: OpenAICompatibleProvider) -> None:
    body = provider.build_request_body(
        _req(json_schema=SCHEMA, schema_name="verdict", strict=False, temperature=0.2, max_tokens=80, seed=7)
    )
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "verdict", "strict": False, "schema": SCHEMA},
    }
    assert (body["temperature"], body["max_tokens"], body["seed"]) == (0.2, 80, 7)
    assert body["messages"][0] == {"role": "system", "content": "You are terse."}  # the prompt is untouched
    assert "provider" not in body
    assert "usage" not in body


def test_request_without_structured_output_falls_back_to_json_object(
    provider: OpenAICompatibleProvider,
) -> None:
    body = provider.build_request_body(_req(json_schema=SCHEMA, supports_structured_output=False))
    assert body["response_format"] == {"type": "json_object"}
    system = body["messages"][0]["content"]
    assert system.startswith("You are terse.")
    assert SCHEMA_INSTRUCTION_MARKER in system
    assert json.dumps(SCHEMA, separators=(",", ":")) in system


def test_per_model_json_object_mode_inserts_a_system_message_when_there_is_none(
    provider: OpenAICompatibleProvider,
) -> None:
    request = _req(
        model="llama-cpp-old", json_schema=SCHEMA, messages=[ChatMessage(role="user", content="Go")]
    )
    body = provider.build_request_body(request)
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][0]["content"].startswith(SCHEMA_INSTRUCTION_MARKER)
    assert body["messages"][1] == {"role": "user", "content": "Go"}


def test_prompt_mode_sends_no_response_format(provider: OpenAICompatibleProvider) -> None:
    body = provider.build_request_body(_req(model="tgi-model", json_schema=SCHEMA))
    assert "response_format" not in body
    assert SCHEMA_INSTRUCTION_MARKER in body["messages"][0]["content"]
    # a request without a schema is never changed, whatever the mode
    plain = provider.build_request_body(_req(model="tgi-model"))
    assert plain == {**provider.build_request_body(_req()), "model": "tgi-model"}


def test_modes_in_order_of_precedence(provider: OpenAICompatibleProvider) -> None:
    assert provider.structured_output_mode("any") == "json_schema"
    assert provider.structured_output_mode("any", supports_structured_output=False) == "json_object"
    assert provider.structured_output_mode("llama-cpp-old") == "json_object"
    assert provider.structured_output_mode("tgi-model", supports_structured_output=False) == "prompt"


async def test_global_json_object_mode_and_max_completion_tokens() -> None:
    p = OpenAICompatibleProvider(
        base_url=BASE, structured_output="json_object", max_tokens_param="max_completion_tokens"
    )
    body = p.build_request_body(_req(json_schema=SCHEMA, max_tokens=64))
    await p.aclose()
    assert body["response_format"] == {"type": "json_object"}
    assert body["max_completion_tokens"] == 64
    assert "max_tokens" not in body


def test_stream_asks_for_usage_and_extra_is_merged_last(provider: OpenAICompatibleProvider) -> None:
    body = provider.build_request_body(_req(stream=True, extra={"top_p": 0.9, "stop": ["\n\n"]}))
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["top_p"] == 0.9
    assert body["stop"] == ["\n\n"]


# --- prices → cost ------------------------------------------------------------------------------------------
def test_cost_is_usage_times_prices_per_million(provider: OpenAICompatibleProvider) -> None:
    # 1,000 prompt tokens at $0.15/1M + 500 completion tokens at $0.60/1M = $0.00015 + $0.0003
    assert provider.cost("gpt-4o-mini", 1000, 500) == Decimal("0.00045")
    assert provider.cost("gpt-4o-mini", 0, 0) == 0
    assert provider.cost("unpriced-model", 1000, 500) is None


def test_settings_parse_prices_modes_and_hide_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", "http://127.0.0.1:8000/v1")
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "sk-very-secret")
    monkeypatch.setenv(
        "OPENAI_COMPATIBLE_PRICES",
        '{"gpt-4o-mini": {"prompt": 0.15, "completion": "0.6"}, "local": {"prompt": 0, "completion": 0}}',
    )
    monkeypatch.setenv("OPENAI_COMPATIBLE_STRUCTURED_OUTPUT", "json_object")
    monkeypatch.setenv(
        "OPENAI_COMPATIBLE_STRUCTURED_OUTPUT_MODELS", "Qwen/Qwen2.5-7B=json_schema, tgi=prompt"
    )
    s = ProviderSettings()
    assert s.openai_compatible_base_url == "http://127.0.0.1:8000/v1"
    assert s.openai_compatible_prices["gpt-4o-mini"] == TokenPrice(
        prompt=Decimal("0.15"), completion=Decimal("0.6")
    )
    assert s.openai_compatible_prices["local"].prompt == 0
    assert s.openai_compatible_structured_output == "json_object"
    assert s.openai_compatible_structured_output_models == {"Qwen/Qwen2.5-7B": "json_schema", "tgi": "prompt"}
    assert "sk-very-secret" not in repr(s)
    assert "sk-very-secret" not in str(s.model_dump())
    provider = OpenAICompatibleProvider.from_settings(s)
    assert "sk-very-secret" not in repr(provider)
    assert provider.has_key


def test_settings_blank_values_are_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_COMPATIBLE_BASE_URL", "OPENAI_COMPATIBLE_API_KEY", "OPENAI_COMPATIBLE_PRICES"):
        monkeypatch.setenv(var, " ")  # what an unset compose variable becomes
    s = ProviderSettings()
    assert s.openai_compatible_base_url is None
    assert s.openai_compatible_api_key is None
    assert s.openai_compatible_prices == {}
    assert s.openai_compatible_structured_output == "json_schema"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("openai_compatible_prices", '{"m": {"prompt": -1, "completion": 1}}'),
        ("openai_compatible_prices", '{"m": {"prompt": 1}}'),
        ("openai_compatible_prices", '{"m": {"prompt": 1, "completion": 1, "per": "token"}}'),
        ("openai_compatible_structured_output", "grammar"),
        ("openai_compatible_structured_output_models", "model-without-mode"),
        ("openai_compatible_structured_output_models", "m=xml"),
    ],
)
def test_settings_reject_invalid_values(field: str, value: str) -> None:
    with pytest.raises(ValueError, match=field):
        ProviderSettings.model_validate({field: value})


# --- catalog records ----------------------------------------------------------------------------------------
async def test_records_from_models_entries(provider: OpenAICompatibleProvider) -> None:
    vllm = provider._record(
        {"id": "meta-llama/Llama-3.1-8B-Instruct", "object": "model", "created": 1733000000,
         "owned_by": "vllm", "max_model_len": 8192}
    )  # fmt: skip
    assert vllm.key == "openai-compatible:meta-llama/Llama-3.1-8B-Instruct"
    assert vllm.context_length == 8192
    assert vllm.created == datetime.fromtimestamp(1733000000, tz=UTC)
    assert vllm.description == "owned by vllm"
    assert vllm.structured_output
    assert vllm.pricing.prompt is None  # no price configured: unknown, not free
    assert not vllm.free
    priced = provider._record({"id": "gpt-4o-mini", "created": 0, "context_window": 128000})
    assert (priced.pricing.prompt, priced.pricing.completion) == (Decimal("0.15"), Decimal("0.6"))
    assert priced.context_length == 128000
    assert priced.created is None
    old = provider._record({"id": "llama-cpp-old"})
    assert not old.structured_output
    assert "response_format" in old.supported_parameters
    assert "structured_outputs" not in old.supported_parameters
    assert provider._record({"id": "tgi-model"}).supported_parameters == [
        "max_tokens",
        "temperature",
        "seed",
        "stream",
    ]


def test_free_when_priced_zero_and_document_round_trip() -> None:
    from llmts_providers.models import ModelPricing

    zero = ModelPricing(prompt=Decimal(0), completion=Decimal(0))
    record = ModelRecord.from_openai_compatible(
        {"id": "local", "display_name": "Local model", "context_length": 4096}, pricing=zero
    )
    assert record.free
    assert record.name == "Local model"
    assert ModelRecord.from_document(record.to_document()) == record


# --- factory and an unconfigured provider -------------------------------------------------------------------
async def test_factory_builds_and_selects_it() -> None:
    unset = ProviderFactory(ProviderSettings(openai_compatible_base_url=None))
    assert not unset.configured("openai-compatible")
    factory = ProviderFactory(ProviderSettings(openai_compatible_base_url=BASE))
    try:
        assert factory.configured("openai-compatible")
        provider, model = await factory.for_model("ollama/x", "openai-compatible")  # explicit: id untouched
        assert isinstance(provider, OpenAICompatibleProvider)
        assert model == "ollama/x"
        assert factory.get("openai-compatible") is provider
    finally:
        await factory.aclose()
        await unset.aclose()


async def test_unconfigured_provider_sends_nothing() -> None:
    p = OpenAICompatibleProvider(base_url=None)
    with pytest.raises(ProviderUnavailable, match="OPENAI_COMPATIBLE_BASE_URL") as info:
        await p.chat(_req())
    assert not info.value.retryable
    with pytest.raises(ProviderUnavailable):
        await p.list_models()
    result = await p.test_connection()
    assert not result.reachable
    assert result.error is not None
    assert "OPENAI_COMPATIBLE_BASE_URL" in result.error
    await p.aclose()
