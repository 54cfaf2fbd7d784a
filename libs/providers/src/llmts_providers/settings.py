"""Provider settings (env vars, case-insensitive). Build it in a composition root, never at import."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["KNOWN_PROVIDERS", "ProviderSettings", "StructuredOutputMode", "TokenPrice"]

KNOWN_PROVIDERS = ("openrouter", "ollama", "openai-compatible")

StructuredOutputMode = Literal["json_schema", "json_object", "prompt"]


class TokenPrice(BaseModel):
    """A model's price in USD per 1M tokens (the unit of every price page and of the catalog)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: Decimal = Field(ge=0, description="USD per 1M prompt (input) tokens.")
    completion: Decimal = Field(ge=0, description="USD per 1M completion (output) tokens.")


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [p.strip().lower() for p in value.split(",") if p.strip()]
    return value


class ProviderSettings(BaseSettings):
    """``OPENROUTER_*``, ``OLLAMA_*``, ``OPENAI_COMPATIBLE_*`` and ``PROVIDER_*`` environment variables."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    openrouter_base_url: str = "https://openrouter.ai/api/v1"
    openrouter_api_key: SecretStr | None = None
    openrouter_app_url: str | None = Field(default=None, description="Sent as HTTP-Referer.")
    openrouter_app_title: str | None = Field(
        default=None, description="Sent as X-OpenRouter-Title (and X-Title)."
    )

    openrouter_http_backend: Literal["aiohttp", "httpx"] = Field(
        default="aiohttp",
        description="Transport of the openai SDK for OpenRouter calls: its aiohttp transport (half the CPU per "
        "call) or its default httpx one.",
    )

    ollama_base_url: str = "http://127.0.0.1:11434"
    ollama_api_key: SecretStr | None = Field(
        default=None, description="Optional bearer token for an Ollama behind an authenticating proxy."
    )
    ollama_keep_alive: str | None = Field(
        default=None, description="keep_alive sent on /api/chat, e.g. '10m'."
    )

    openai_compatible_base_url: str | None = Field(
        default=None,
        description="Base URL of any server speaking /chat/completions and /models, up to and including /v1 "
        "(vLLM http://host:8000/v1, llama.cpp http://host:8080/v1, LM Studio http://host:1234/v1, "
        "https://api.openai.com/v1, https://api.groq.com/openai/v1, …). Unset = the provider is not configured.",
    )
    openai_compatible_api_key: SecretStr | None = Field(
        default=None, description="Bearer key of that server (secret; optional for local servers)."
    )
    openai_compatible_structured_output: StructuredOutputMode = Field(
        default="json_schema",
        description="How a JSON Schema is requested: json_schema (response_format json_schema, strict), "
        "json_object (response_format json_object + the schema in the system prompt) or prompt (the schema in "
        "the system prompt only, for servers that accept neither).",
    )
    openai_compatible_structured_output_models: Annotated[dict[str, StructuredOutputMode], NoDecode] = Field(
        default_factory=dict,
        description="Per-model structured output mode overriding the one above: 'model-a=json_object,model-b=prompt'.",
    )
    openai_compatible_prices: Annotated[dict[str, TokenPrice], NoDecode] = Field(
        default_factory=dict,
        description='JSON: USD per 1M tokens per model, e.g. {"gpt-4o-mini": {"prompt": 0.15, "completion": 0.6}}; '
        "cost_usd = usage × these prices (these servers report no cost); unknown models cost 0.",
    )
    openai_compatible_batch_price_factor: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Share of the sync price a Batch API line costs on the OpenAI-compatible provider (0.5: the "
        "published 50 % batch discount of OpenAI, Together, Groq, Fireworks, DeepInfra, Mistral).",
    )
    openai_compatible_max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = Field(
        default="max_tokens",
        description="Body field of the token cap: max_tokens (vLLM, llama.cpp, Ollama, most servers) or "
        "max_completion_tokens (OpenAI's reasoning models refuse max_tokens).",
    )

    provider_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        description="Total deadline of a non-streamed call (its answer arrives all at once, so nothing can be "
        "watched before). ChatRequest.timeout_s overrides it per call.",
    )
    provider_first_token_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        description="Streamed calls: the first chunk must arrive within this many seconds of the start of the "
        "call (connect, the server's queue, model load and prompt processing included).",
    )
    provider_idle_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Streamed calls: the longest gap between two chunks once the first has arrived; a long answer "
        "that keeps coming is never cut.",
    )
    provider_stream_timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Streamed calls: an optional cap on the whole call (unset = none; max_tokens bounds a "
        "runaway answer).",
    )
    provider_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    provider_fallback_order: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma list, e.g. 'ollama,openrouter'. Empty = no fallback."
    )
    provider_fallback_models: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Model to use on each fallback provider: 'ollama=llama3.2,openrouter=openai/gpt-4o-mini'.",
    )
    provider_fallback_cooldown_seconds: float = Field(default=30.0, ge=0)

    @field_validator("provider_fallback_order", mode="before")
    @classmethod
    def _order(cls, value: Any) -> Any:
        order = _split_csv(value)
        if isinstance(order, list):
            unknown = [p for p in order if p not in KNOWN_PROVIDERS]
            if unknown:
                raise ValueError(f"unknown provider(s) in PROVIDER_FALLBACK_ORDER: {unknown}")
        return order

    @field_validator("provider_fallback_models", mode="before")
    @classmethod
    def _models(cls, value: Any) -> Any:
        if isinstance(value, str):
            out: dict[str, str] = {}
            for part in value.split(","):
                if "=" in part:
                    k, _, v = part.partition("=")
                    if k.strip() and v.strip():
                        out[k.strip().lower()] = v.strip()
            return out
        return value

    @field_validator("openai_compatible_structured_output_models", mode="before")
    @classmethod
    def _structured_models(cls, value: Any) -> Any:
        if isinstance(value, str):  # model ids keep their case; the last '=' separates the mode
            out: dict[str, str] = {}
            for part in value.split(","):
                model, sep, mode = part.rpartition("=")
                if sep and model.strip() and mode.strip():
                    out[model.strip()] = mode.strip().lower()
                elif part.strip():
                    raise ValueError(
                        f"expected model=mode in OPENAI_COMPATIBLE_STRUCTURED_OUTPUT_MODELS: {part!r}"
                    )
            return out
        return value

    @field_validator("openai_compatible_prices", mode="before")
    @classmethod
    def _prices(cls, value: Any) -> Any:
        if isinstance(value, str):  # JSON; blank (an unset compose variable) = no prices
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("openai_compatible_base_url", mode="before")
    @classmethod
    def _blank_url_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("openrouter_api_key", "ollama_api_key", "openai_compatible_api_key", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("provider_stream_timeout_seconds", mode="before")
    @classmethod
    def _blank_timeout_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value
