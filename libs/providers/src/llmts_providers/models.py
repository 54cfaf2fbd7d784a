"""Provider-neutral request/result/catalog models."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ChatMessage",
    "ChatRequest",
    "ChatResult",
    "ConnectionTestResult",
    "ModelPricing",
    "ModelRecord",
    "ProviderName",
    "add_schema_instruction",
    "per_million",
    "schema_instruction",
]

ProviderName = Literal["openrouter", "ollama", "openai-compatible"]
PER_MILLION = Decimal(1_000_000)


class ChatMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(BaseModel):
    """One chat completion, provider-neutral.

    ``json_schema`` asks for structured output: OpenRouter gets ``response_format`` json_schema (or json_object plus
    the schema appended to the system prompt when ``supports_structured_output`` is False); Ollama gets
    ``format: <schema>``; an OpenAI-compatible server gets its configured mode (json_schema, json_object + the
    schema in the prompt, or the prompt only), json_schema becoming json_object when ``supports_structured_output``
    is False. ``extra`` is merged into the provider body last (OpenRouter: top level, ``provider`` is deep-merged;
    Ollama: top level, ``options`` is deep-merged; OpenAI-compatible: top level).
    """

    model: str
    messages: list[ChatMessage]
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    json_schema: dict[str, Any] | None = None
    schema_name: str = "item"
    strict: bool = True
    supports_structured_output: bool = True
    stream: bool = False
    timeout_s: float | None = Field(
        default=None,
        description="Total deadline of this call (seconds): overrides the provider's for a non-streamed call, and "
        "caps a streamed one too.",
    )
    first_token_timeout_s: float | None = Field(
        default=None, description="Streamed calls: first-token deadline override (seconds)."
    )
    idle_timeout_s: float | None = Field(
        default=None, description="Streamed calls: longest gap between two chunks, override (seconds)."
    )
    cache_prompt: bool = Field(
        default=False,
        description="Ask the provider to cache the stable head of the prompt (the system message: instructions, "
        "schema, examples). OpenRouter: an explicit ``cache_control`` breakpoint on the system message for the model "
        "families that need one (Anthropic, Gemini); others cache prefixes automatically. No effect elsewhere.",
    )
    extra: dict[str, Any] = Field(default_factory=dict)


class ChatResult(BaseModel):
    text: str
    finish_reason: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = Field(
        default=0,
        description="Prompt tokens served from the provider's prompt cache (``usage.prompt_tokens_details."
        "cached_tokens``); part of ``prompt_tokens``.",
    )
    cache_write_tokens: int = Field(
        default=0,
        description="Prompt tokens written to the provider's prompt cache (``prompt_tokens_details."
        "cache_write_tokens``, OpenRouter).",
    )
    cost_usd: float = 0.0
    model: str
    provider: str
    generation_id: str | None = None
    latency_ms: float = 0.0
    cost_reported: bool = Field(
        default=False,
        description="True when the cost is known: reported by the provider (OpenRouter), always 0 (Ollama) or "
        "computed from configured prices and reported usage (OpenAI-compatible).",
    )
    upstream_provider: str | None = Field(
        default=None, description="OpenRouter's serving provider, e.g. 'OpenAI'."
    )
    native_finish_reason: str | None = None
    first_token_ms: float | None = Field(
        default=None,
        description="Streamed calls: time from the start of the call to its first chunk, queueing at the server "
        "included; None for a non-streamed call.",
    )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def per_million(value: Any) -> Decimal | None:
    """USD-per-token string → exact USD per 1M tokens. Missing/invalid/negative (OpenRouter's "-1" = variable) → None."""
    d = to_decimal(value)
    return None if d is None else _plain(d * PER_MILLION)


def to_decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not d.is_finite() or d < 0:
        return None
    return _plain(d)


def _plain(d: Decimal) -> Decimal:
    # normalise without scientific notation: 0.15000000 → 0.15, 1.5E+1 → 15
    return Decimal(format(d.normalize(), "f"))


class GenerationStats(BaseModel):
    """What the provider's own books say about one generation (OpenRouter ``GET /generation?id=``): the cost to
    reconcile with what the response's ``usage`` reported, which is missing when a stream was abandoned or timed out."""

    id: str
    total_cost_usd: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_discount_usd: float | None = None
    model: str | None = None
    upstream_provider: str | None = None
    streamed: bool | None = None
    cancelled: bool | None = None
    finish_reason: str | None = None


class ModelPricing(BaseModel):
    """USD prices. ``prompt``/``completion`` per 1M tokens; ``request`` per request; ``web_search`` per search.

    ``None`` means unknown (absent, or OpenRouter's negative "variable price" sentinel), ``0`` means free.
    """

    prompt: Decimal | None = None
    completion: Decimal | None = None
    request: Decimal | None = None
    web_search: Decimal | None = None

    @property
    def is_zero(self) -> bool:
        return self.prompt == 0 and self.completion == 0 and not self.request


class ModelRecord(BaseModel):
    """The normalised catalog record for one model of one provider."""

    id: str
    provider: ProviderName
    name: str
    description: str = ""
    context_length: int | None = None
    max_completion_tokens: int | None = None
    input_modalities: list[str] = Field(default_factory=lambda: ["text"])
    output_modalities: list[str] = Field(default_factory=lambda: ["text"])
    pricing: ModelPricing = Field(default_factory=ModelPricing)
    free: bool = False
    online: bool = False
    structured_output: bool = False
    tools: bool = False
    created: datetime | None = None
    supported_parameters: list[str] = Field(default_factory=list)
    raw: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        """Unique across providers: ``"<provider>:<id>"``."""
        return f"{self.provider}:{self.id}"

    # --- OpenRouter / Ollama / OpenAI-compatible normalisation ----------------------------------------
    @classmethod
    def from_openrouter(cls, raw: Mapping[str, Any]) -> ModelRecord:
        model_id = str(raw["id"])
        arch = raw.get("architecture") or {}
        pricing_raw = raw.get("pricing") or {}
        top = raw.get("top_provider") or {}
        params = [str(p) for p in (raw.get("supported_parameters") or [])]
        pricing = ModelPricing(
            prompt=per_million(pricing_raw.get("prompt")),
            completion=per_million(pricing_raw.get("completion")),
            request=to_decimal(pricing_raw.get("request")),
            web_search=to_decimal(pricing_raw.get("web_search")),
        )
        created_raw = raw.get("created")
        created = (
            datetime.fromtimestamp(created_raw, tz=UTC)
            if isinstance(created_raw, int | float) and not isinstance(created_raw, bool)
            else None
        )
        context = raw.get("context_length") or top.get("context_length")
        return cls(
            id=model_id,
            provider="openrouter",
            name=str(raw.get("name") or model_id),
            description=str(raw.get("description") or ""),
            context_length=int(context) if context else None,
            max_completion_tokens=int(top["max_completion_tokens"])
            if top.get("max_completion_tokens")
            else None,
            input_modalities=list(arch.get("input_modalities") or ["text"]),
            output_modalities=list(arch.get("output_modalities") or ["text"]),
            pricing=pricing,
            free=model_id.endswith(":free") or pricing.is_zero,
            online=bool(pricing.web_search and pricing.web_search > 0) or "web_search_options" in params,
            structured_output="response_format" in params or "structured_outputs" in params,
            tools="tools" in params,
            created=created,
            supported_parameters=params,
            raw=dict(raw),
        )

    @classmethod
    def from_ollama(cls, tag: Mapping[str, Any], show: Mapping[str, Any] | None = None) -> ModelRecord:
        """Build from an ``/api/tags`` entry, enriched by ``/api/show`` when given."""
        name = str(tag.get("model") or tag.get("name"))
        details = dict(tag.get("details") or {})
        show = show or {}
        details.update(show.get("details") or {})
        info = show.get("model_info") or {}
        capabilities = [str(c) for c in (show.get("capabilities") or tag.get("capabilities") or [])]
        context: int | None = None
        if isinstance(details.get("context_length"), int):
            context = int(details["context_length"])
        else:
            for k, v in info.items():
                if str(k).endswith(".context_length") and isinstance(v, int):
                    context = v
                    break
        modified = tag.get("modified_at") or show.get("modified_at")
        created: datetime | None = None
        if isinstance(modified, str):
            created = _parse_go_time(modified)
        desc_bits = [
            str(details[k]) for k in ("family", "parameter_size", "quantization_level") if details.get(k)
        ]
        inputs = ["text", "image"] if "vision" in capabilities else ["text"]
        raw: dict[str, Any] = {"tag": dict(tag)}
        if show:
            raw["show"] = {k: v for k, v in show.items() if k not in ("tensors", "modelfile", "license")}
        zero = Decimal(0)
        return cls(
            id=name,
            provider="ollama",
            name=name,
            description=" ".join(desc_bits),
            context_length=context,
            max_completion_tokens=None,
            input_modalities=inputs,
            output_modalities=["text"],
            pricing=ModelPricing(prompt=zero, completion=zero, request=zero, web_search=zero),
            free=True,
            online=False,
            structured_output=True,
            tools="tools" in capabilities,
            created=created,
            supported_parameters=["format", "temperature", "num_predict", "seed"]
            + (["tools"] if "tools" in capabilities else []),
            raw=raw,
        )

    @classmethod
    def from_openai_compatible(
        cls,
        raw: Mapping[str, Any],
        *,
        pricing: ModelPricing | None = None,
        structured_output: bool = False,
        supported_parameters: list[str] | None = None,
    ) -> ModelRecord:
        """Build from one ``/models`` entry of an OpenAI-compatible server (``id``, ``created``, ``owned_by``;
        the context length when the server tells it: ``context_length`` (Together), ``max_model_len`` (vLLM),
        ``context_window`` (Groq); unknown otherwise). Prices and the structured-output flag come from settings."""
        model_id = str(raw["id"])
        context: int | None = None
        for key in ("context_length", "max_model_len", "context_window"):
            value = raw.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                context = value
                break
        created_raw = raw.get("created")
        created = (
            datetime.fromtimestamp(created_raw, tz=UTC)
            if isinstance(created_raw, int | float) and not isinstance(created_raw, bool) and created_raw > 0
            else None
        )
        owner = raw.get("owned_by") or raw.get("organization")
        price = pricing or ModelPricing()
        return cls(
            id=model_id,
            provider="openai-compatible",
            name=str(raw.get("display_name") or raw.get("name") or model_id),
            description=f"owned by {owner}" if isinstance(owner, str) and owner else "",
            context_length=context,
            pricing=price,
            free=price.is_zero,
            structured_output=structured_output,
            created=created,
            supported_parameters=list(supported_parameters or []),
            raw=dict(raw),
        )

    # --- Mongo storage ----------------------------------------------------------------------------------
    def to_document(self) -> dict[str, Any]:
        """A BSON-safe dict: Decimals as exact strings, ``created`` as a datetime, ``raw`` as a JSON string.

        ``raw`` is stored as a string because provider dicts may contain keys with dots (Ollama ``model_info``)
        that some MongoDB-wire servers reject.
        """
        doc = self.model_dump(mode="python")
        doc["pricing"] = {k: (None if v is None else str(v)) for k, v in doc["pricing"].items()}
        doc["raw"] = json.dumps(self.raw, separators=(",", ":"), default=str)
        doc["key"] = self.key
        return doc

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> ModelRecord:
        data = {k: v for k, v in doc.items() if k in cls.model_fields}
        raw = data.get("raw")
        if isinstance(raw, str):
            data["raw"] = json.loads(raw) if raw else {}
        pricing = data.get("pricing")
        if isinstance(pricing, Mapping):
            data["pricing"] = {k: (None if v is None else Decimal(str(v))) for k, v in pricing.items()}
        created = data.get("created")
        if isinstance(created, datetime) and created.tzinfo is None:
            data["created"] = created.replace(tzinfo=UTC)  # BSON dates come back naive (UTC)
        return cls.model_validate(data)


def _parse_go_time(value: str) -> datetime | None:
    # Go RFC3339Nano: "2025-05-04T17:37:44.706015396-07:00" — trim fractional seconds to 6 digits.
    s = value.strip().replace("Z", "+00:00")
    if "." in s:
        head, _, rest = s.partition(".")
        digits = ""
        i = 0
        while i < len(rest) and rest[i].isdigit():
            digits += rest[i]
            i += 1
        s = f"{head}.{digits[:6].ljust(6, '0')}{rest[i:]}"
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class ConnectionTestResult(BaseModel):
    provider: str
    reachable: bool
    latency_ms: float | None = None
    key_valid: bool | None = None
    credits: dict[str, Any] | None = None
    version: str | None = None
    error: str | None = None


SCHEMA_INSTRUCTION_MARKER = "Respond with only a JSON object that validates against this JSON Schema"


def add_schema_instruction(messages: list[dict[str, Any]], schema: Mapping[str, Any]) -> None:
    """Append :func:`schema_instruction` to the system message of wire ``messages`` (inserting one if none)."""
    instruction = schema_instruction(schema)
    if messages and messages[0]["role"] == "system":
        messages[0] = {"role": "system", "content": messages[0]["content"] + instruction}
    else:
        messages.insert(0, {"role": "system", "content": instruction.lstrip()})


def schema_instruction(schema: Mapping[str, Any]) -> str:
    """The text appended to the system prompt when the model has no native structured output."""
    return (
        f"\n\n{SCHEMA_INSTRUCTION_MARKER} (no prose, no code fences):\n"
        f"{json.dumps(schema, ensure_ascii=False, separators=(',', ':'))}"
    )
