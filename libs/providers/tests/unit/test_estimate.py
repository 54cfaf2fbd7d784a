"""The preview estimator: prompt tokens from a request body, the low/high cost range."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from llmts_providers import ChatMessage, ChatRequest, ModelPricing, OllamaProvider, OpenRouterProvider
from llmts_providers.estimate import (
    ASSUMED_MAX_TOKENS,
    estimate_cost,
    estimate_prompt_tokens,
    estimate_text_tokens,
    pricing_from,
    request_schema,
)

pytestmark = pytest.mark.unit

SCHEMA: dict[str, Any] = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
SCHEMA_TOKENS = estimate_text_tokens(json.dumps(SCHEMA, separators=(",", ":")))
PRICES = ModelPricing(prompt=Decimal("0.15"), completion=Decimal("0.60"), request=Decimal("0.001"))


def _chat(json_schema: dict[str, Any] | None = None) -> ChatRequest:
    return ChatRequest(
        model="m",
        messages=[ChatMessage(role="system", content="x" * 9), ChatMessage(role="user", content="y" * 4)],
        json_schema=json_schema,
    )


@pytest.mark.parametrize(("text", "tokens"), [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("é" * 8, 2)])
def test_text_tokens_are_characters_over_four_rounded_up(text: str, tokens: int) -> None:
    assert estimate_text_tokens(text) == tokens


def test_prompt_tokens_count_each_message_its_frame_and_the_reply_priming() -> None:
    body = {"messages": [{"role": "system", "content": "x" * 9}, {"role": "user", "content": "y" * 4}]}
    assert estimate_prompt_tokens(body) == (4 + 3) + (4 + 1) + 3


def test_an_empty_body_is_the_reply_priming_only() -> None:
    assert estimate_prompt_tokens({}) == 3
    assert estimate_prompt_tokens({"messages": "not a list"}) == 3


async def test_the_schema_counts_the_same_in_both_providers_bodies() -> None:
    openrouter = OpenRouterProvider(base_url="http://127.0.0.1:9/api/v1", api_key="sk-or-v1-x")
    ollama = OllamaProvider(base_url="http://127.0.0.1:9")
    try:
        bodies = [p.build_request_body(_chat(SCHEMA)) for p in (openrouter, ollama)]
        plain = openrouter.build_request_body(_chat())
    finally:
        await openrouter.aclose()
        await ollama.aclose()
    assert [request_schema(b) for b in bodies] == [SCHEMA, SCHEMA]
    assert request_schema(plain) is None
    assert [estimate_prompt_tokens(b) for b in bodies] == [estimate_prompt_tokens(plain) + SCHEMA_TOKENS] * 2


async def test_a_schema_moved_into_the_system_prompt_counts_as_message_content() -> None:
    provider = OpenRouterProvider(base_url="http://127.0.0.1:9/api/v1", api_key="sk-or-v1-x")
    try:
        chat = _chat(SCHEMA).model_copy(update={"supports_structured_output": False})
        body = provider.build_request_body(chat)
        plain = provider.build_request_body(_chat())
    finally:
        await provider.aclose()
    assert request_schema(body) is None
    assert estimate_prompt_tokens(body) > estimate_prompt_tokens(plain) + SCHEMA_TOKENS


def test_non_text_content_is_counted_as_its_json() -> None:
    parts = [{"type": "text", "text": "hello"}]
    body = {"messages": [{"role": "user", "content": parts}]}
    assert estimate_prompt_tokens(body) == 4 + estimate_text_tokens(json.dumps(parts)) + 3


def test_one_attempt_range_is_prompt_only_up_to_max_tokens_of_answer() -> None:
    est = estimate_cost(prompt_tokens=1000, max_tokens=500, count=10, pricing=PRICES)
    low = Decimal(1000) * Decimal("0.15") / 1_000_000 + Decimal("0.001")
    high = low + Decimal(500) * Decimal("0.60") / 1_000_000
    assert (est.low.calls, est.low.prompt_tokens, est.low.completion_tokens) == (10, 10_000, 0)
    assert (est.high.calls, est.high.prompt_tokens, est.high.completion_tokens) == (10, 10_000, 5_000)
    assert est.low.usd == low * 10
    assert est.high.usd == high * 10
    out = est.to_dict()
    assert out["per_item"] == {"low": pytest.approx(float(low)), "high": pytest.approx(float(high))}
    assert out["total"] == {"low": pytest.approx(float(low * 10)), "high": pytest.approx(float(high * 10))}
    assert out["prices_per_million"] == {"prompt": "0.15", "completion": "0.60", "request": "0.001"}
    assert out["method"] == "chars/4"
    assert out["max_tokens_assumed"] is False


def test_repair_calls_carry_the_previous_answer_and_the_instruction() -> None:
    est = estimate_cost(
        prompt_tokens=100, max_tokens=50, count=2, attempts=3, repair_prompt_tokens=20, pricing=None
    )
    repair_prompt = 100 + 50 + 20 + 2 * 4
    assert est.low.calls == 2
    assert est.high.calls == 6
    assert est.high.prompt_tokens == 2 * (100 + 2 * repair_prompt)
    assert est.high.completion_tokens == 6 * 50


def test_without_a_token_price_the_range_has_tokens_but_no_usd() -> None:
    for pricing in (None, ModelPricing(prompt=Decimal(1)), ModelPricing(completion=Decimal(1))):
        est = estimate_cost(prompt_tokens=10, max_tokens=5, count=1, pricing=pricing)
        assert not est.priced
        out = est.to_dict()
        assert out["low"]["cost_usd"] is None
        assert out["total"] is None
        assert out["per_item"] is None
        assert out["high"]["completion_tokens"] == 5


def test_free_models_cost_zero_not_unknown() -> None:
    est = estimate_cost(
        prompt_tokens=10, count=3, pricing=ModelPricing(prompt=Decimal(0), completion=Decimal(0))
    )
    assert est.priced
    assert est.to_dict()["total"] == {"low": 0.0, "high": 0.0}


def test_no_max_tokens_assumes_the_default_and_says_so() -> None:
    est = estimate_cost(prompt_tokens=10, count=1, pricing=None)
    assert est.max_completion_tokens == ASSUMED_MAX_TOKENS
    assert est.max_tokens_assumed is True
    assert (
        estimate_cost(prompt_tokens=10, count=1, pricing=None, assumed_max_tokens=7).high.completion_tokens
        == 7
    )


@pytest.mark.parametrize(
    "bad", [{"count": 0}, {"attempts": 0}, {"prompt_tokens": -1}, {"repair_prompt_tokens": -1}]
)
def test_nonsense_inputs_are_refused(bad: dict[str, int]) -> None:
    args: dict[str, Any] = {"prompt_tokens": 10, "count": 1, "pricing": None, **bad}
    with pytest.raises(ValueError, match="count and attempts"):
        estimate_cost(**args)


def test_catalog_json_prices_are_read_and_bad_ones_are_unknown() -> None:
    assert pricing_from(None) is None
    read = pricing_from({"prompt": "0.15", "completion": 0.6, "request": None})
    assert read == ModelPricing(prompt=Decimal("0.15"), completion=Decimal("0.6"))
    bad = pricing_from({"prompt": "-1", "completion": "cheap", "request": True})
    assert bad == ModelPricing()
    assert pricing_from({"prompt": "NaN", "completion": "Infinity"}) == ModelPricing()
