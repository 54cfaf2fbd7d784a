"""Token and cost estimates of chat calls before they are made (the previews): one formula for every caller.

Tokens (``method = "chars/4"``: a deliberate approximation, no tokenizer) are read from the request body a
provider would be sent (``build_request_body``), so whatever the body carries counts:

    prompt_tokens = Σ over messages (4 + ⌈len(content) / 4⌉) + 3 + ⌈len(schema as compact JSON) / 4⌉

4 tokens frame each message (role and separators), 3 prime the reply; the schema is the structured-output schema
(OpenRouter ``response_format.json_schema.schema``, Ollama ``format``), 0 without one. A schema that a provider
puts into the system prompt instead is counted as message content.

Cost, for ``count`` items of at most ``attempts`` calls each, from USD prices per 1M prompt and completion tokens
(``ModelPricing``, the catalog's unit) and a per-call ``request`` price:

- low: every item valid at its first call with an empty answer: ``count`` calls of ``prompt_tokens`` and 0
  completion tokens — the least the job can cost;
- high: every item uses all its calls, each answer ``max_tokens`` long; a repair call sends the first prompt plus the
  previous answer (``max_tokens``) and the repair instruction (``repair_prompt_tokens``) as two more messages —
  the most it can cost;
- ``usd = prompt_tokens × prompt / 1M + completion_tokens × completion / 1M + calls × request``; ``None`` when the
  prompt or completion price is unknown.

``max_tokens=None`` assumes ``assumed_max_tokens`` (1024 by default) and says so (``max_tokens_assumed``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from llmts_providers.models import ModelPricing

METHOD = "chars/4"
CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4
REPLY_PRIMING_TOKENS = 3
ASSUMED_MAX_TOKENS = 1024
MILLION = Decimal(1_000_000)


def estimate_text_tokens(text: str) -> int:
    """⌈len(text) / 4⌉."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def request_schema(body: Mapping[str, Any]) -> Any | None:
    """The structured-output schema a request body carries (OpenRouter or Ollama shape), or ``None``."""
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping):
        json_schema = response_format.get("json_schema")
        if isinstance(json_schema, Mapping) and "schema" in json_schema:
            return json_schema["schema"]
    ollama_format = body.get("format")
    return ollama_format if isinstance(ollama_format, Mapping) else None


def _content_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if content is None:
        return ""
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)


def estimate_prompt_tokens(body: Mapping[str, Any]) -> int:
    """The prompt tokens of one call with this request body (formula in the module docstring)."""
    raw_messages = body.get("messages")
    messages = [m for m in raw_messages if isinstance(m, Mapping)] if isinstance(raw_messages, list) else []
    tokens = sum(TOKENS_PER_MESSAGE + estimate_text_tokens(_content_text(m)) for m in messages)
    tokens += REPLY_PRIMING_TOKENS
    schema = request_schema(body)
    if schema is not None:
        tokens += estimate_text_tokens(json.dumps(schema, ensure_ascii=False, separators=(",", ":")))
    return tokens


def _price(raw: Any) -> Decimal | None:
    if raw is None or isinstance(raw, bool):
        return None
    try:
        value = Decimal(str(raw))
    except ArithmeticError:
        return None
    return value if value.is_finite() and value >= 0 else None


def pricing_from(raw: Mapping[str, Any] | None) -> ModelPricing | None:
    """Prices in the catalog's JSON format (``{prompt, completion, request}``, USD per 1M tokens / per call);
    a missing, negative or unreadable value is unknown (``None``), as in ``ModelPricing``."""
    if raw is None:
        return None
    return ModelPricing(
        prompt=_price(raw.get("prompt")),
        completion=_price(raw.get("completion")),
        request=_price(raw.get("request")),
    )


def _usd(value: Decimal) -> float:
    return float(round(value, 8))


@dataclass(frozen=True)
class CostBound:
    """One end of the range: how many calls, tokens and USD (``None``: no price)."""

    calls: int
    prompt_tokens: int
    completion_tokens: int
    usd: Decimal | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": None if self.usd is None else _usd(self.usd),
        }


@dataclass(frozen=True)
class CostEstimate:
    count: int
    attempts: int
    prompt_tokens_per_call: int
    max_completion_tokens: int
    max_tokens_assumed: bool
    pricing: ModelPricing | None
    low: CostBound
    high: CostBound

    @property
    def priced(self) -> bool:
        return self.low.usd is not None and self.high.usd is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; ``per_item`` and ``total`` are USD ranges (``null`` without prices)."""
        out: dict[str, Any] = {
            "method": METHOD,
            "currency": "USD",
            "count": self.count,
            "attempts": self.attempts,
            "prompt_tokens_per_call": self.prompt_tokens_per_call,
            "max_completion_tokens": self.max_completion_tokens,
            "max_tokens_assumed": self.max_tokens_assumed,
            "low": self.low.to_dict(),
            "high": self.high.to_dict(),
            "prices_per_million": None,
            "per_item": None,
            "total": None,
        }
        if self.pricing is not None and self.low.usd is not None and self.high.usd is not None:
            out["prices_per_million"] = {
                "prompt": str(self.pricing.prompt),
                "completion": str(self.pricing.completion),
                "request": str(self.pricing.request or Decimal(0)),
            }
            out["per_item"] = {
                "low": _usd(self.low.usd / self.count),
                "high": _usd(self.high.usd / self.count),
            }
            out["total"] = {"low": _usd(self.low.usd), "high": _usd(self.high.usd)}
        return out


def _bound_usd(
    pricing: ModelPricing | None, *, calls: int, prompt_tokens: int, completion_tokens: int
) -> Decimal | None:
    if pricing is None or pricing.prompt is None or pricing.completion is None:
        return None
    return (
        Decimal(prompt_tokens) * pricing.prompt / MILLION
        + Decimal(completion_tokens) * pricing.completion / MILLION
        + calls * (pricing.request or Decimal(0))
    )


def estimate_cost(
    *,
    prompt_tokens: int,
    count: int,
    pricing: ModelPricing | None,
    max_tokens: int | None = None,
    attempts: int = 1,
    repair_prompt_tokens: int = 0,
    assumed_max_tokens: int = ASSUMED_MAX_TOKENS,
) -> CostEstimate:
    """The low/high range of ``count`` items (formula in the module docstring)."""
    if count < 1 or attempts < 1 or prompt_tokens < 0 or repair_prompt_tokens < 0:
        raise ValueError("count and attempts must be ≥ 1, token counts ≥ 0")
    completion = assumed_max_tokens if max_tokens is None else max_tokens
    repair_prompt = prompt_tokens + completion + repair_prompt_tokens + 2 * TOKENS_PER_MESSAGE
    low_calls, high_calls = count, count * attempts
    low_prompt = count * prompt_tokens
    high_prompt = count * (prompt_tokens + (attempts - 1) * repair_prompt)
    high_completion = high_calls * completion
    return CostEstimate(
        count=count,
        attempts=attempts,
        prompt_tokens_per_call=prompt_tokens,
        max_completion_tokens=completion,
        max_tokens_assumed=max_tokens is None,
        pricing=pricing,
        low=CostBound(
            low_calls,
            low_prompt,
            0,
            _bound_usd(pricing, calls=low_calls, prompt_tokens=low_prompt, completion_tokens=0),
        ),
        high=CostBound(
            high_calls,
            high_prompt,
            high_completion,
            _bound_usd(
                pricing, calls=high_calls, prompt_tokens=high_prompt, completion_tokens=high_completion
            ),
        ),
    )
