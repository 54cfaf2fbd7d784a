"""Catalog: providers, the model catalog (search, one model), provider tests and syncs.

Prices are exact decimals serialized as JSON strings, in USD per 1M tokens; ``null`` means unknown (e.g. router
models), ``"0"`` means free.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmts_api import examples as ex
from llmts_api.paging import MAX_OFFSET

ProviderName = Literal["openrouter", "ollama", "openai-compatible"]
ProviderStatus = Literal["ok", "stale", "unavailable", "pending", "disabled"]
SortKey = Literal["price", "context", "name", "created"]
SortOrder = Literal["asc", "desc"]

MODALITY_PATTERN = r"^[a-z][a-z_-]{0,31}$"
MAX_LIMIT = 500
DEFAULT_LIMIT = 50


# ------------------------------------------------------------------------------------------------------ models
class ModelPricingPublic(BaseModel):
    """USD prices as exact decimals (JSON strings); ``null`` = unknown (e.g. router models), ``"0"`` = free."""

    prompt: Decimal | None = Field(description="USD per 1M input tokens.", examples=["0.15"])
    completion: Decimal | None = Field(description="USD per 1M output tokens.", examples=["0.6"])
    request: Decimal | None = Field(description="USD per request.", examples=["0"])
    web_search: Decimal | None = Field(description="USD per web search.", examples=["0.004"])


class ModelPublic(BaseModel):
    """One model of the catalog. ``description``, ``supported_parameters`` and ``raw`` only with ``verbose``."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.MODEL]})

    id: str = Field(examples=["meta-llama/llama-3.3-70b-instruct:free"])
    provider: ProviderName
    name: str = Field(examples=["Meta: Llama 3.3 70B Instruct (free)"])
    description: str | None = Field(default=None, description="Verbose only.")
    context_length: int | None = Field(default=None, examples=[131072])
    max_completion_tokens: int | None = None
    input_modalities: list[str] = Field(examples=[["text"]])
    output_modalities: list[str] = Field(examples=[["text"]])
    pricing: ModelPricingPublic
    free: bool = Field(description="Id ends in ':free' or prompt and completion cost nothing.")
    online: bool = Field(description="Web search is priced or supported.")
    structured_output: bool = Field(description="Supports response_format / structured_outputs.")
    tools: bool = Field(description="Supports tool calling.")
    created: datetime | None = Field(default=None, description="When the provider published the model.")
    supported_parameters: list[str] | None = Field(default=None, description="Verbose only.")
    raw: dict[str, Any] | None = Field(default=None, description="Verbose only: the provider's own fields.")
    stale: bool = Field(description="The provider's last sync failed or is old; this is the last good copy.")
    last_synced_at: datetime | None = Field(
        description="When this provider's catalog was last synced; null if it never was."
    )


class ModelsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.MODELS]})
    total: int = Field(description="Models matching the filters, over all pages.")
    limit: int
    offset: int
    items: list[ModelPublic]


class ModelsQuery(BaseModel):
    """Filters, sort and page of ``GET /providers/models``. Every filter left out selects everything."""

    provider: ProviderName | None = Field(default=None, description="openrouter | ollama | openai-compatible")
    free: bool | None = Field(default=None, description="Only free (true) or only paid (false) models.")
    online: bool | None = Field(default=None, description="Web search priced or supported.")
    structured_output: bool | None = Field(default=None, description="Supports JSON-schema output.")
    tools: bool | None = Field(default=None, description="Supports tool calling.")
    min_context: int | None = Field(
        default=None, ge=0, le=100_000_000, description="Minimum context tokens.", examples=[32000]
    )
    modality: str | None = Field(
        default=None,
        pattern=MODALITY_PATTERN,
        description="An input or output modality, e.g. image.",
        examples=["image"],
    )
    input_modality: str | None = Field(
        default=None, pattern=MODALITY_PATTERN, description="An input modality."
    )
    output_modality: str | None = Field(
        default=None, pattern=MODALITY_PATTERN, description="An output modality."
    )
    q: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Words to find in id, name, description (case-insensitive; every word must occur).",
        examples=["llama instruct"],
    )
    sort: SortKey = Field(
        default="name", description="price (prompt + completion per 1M tokens) | context | name | created"
    )
    order: SortOrder = Field(default="asc", description="asc | desc; unknown values sort last.")
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    verbose: bool = Field(default=True, description="Full record (description, parameters, raw fields).")


class ModelLookupQuery(BaseModel):
    """Query of ``GET /providers/models/{model_id}``."""

    provider: ProviderName | None = Field(
        default=None, description="Disambiguate an id several providers use."
    )
    verbose: bool = Field(default=True, description="Full record (description, parameters, raw fields).")


# --------------------------------------------------------------------------------------------------- providers
class ProviderPublic(BaseModel):
    name: str = Field(examples=["openrouter"])
    enabled: bool = Field(description="Synced by this deployment (CATALOG_PROVIDERS).")
    configured: bool = Field(
        description="OpenRouter: an API key is set; Ollama, OpenAI-compatible: a base URL is set."
    )
    status: ProviderStatus = Field(
        description="ok | stale (serving the last good copy) | unavailable (never synced) | pending | disabled."
    )
    stale: bool
    model_count: int
    last_synced_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_error: str | None = None


class ProvidersPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.PROVIDERS]})
    items: list[ProviderPublic]


class ProviderTestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [ex.PROVIDER_TEST_REQUEST]})

    provider: ProviderName


class ProviderTestPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.PROVIDER_TEST]})
    provider: str = Field(examples=["openrouter"])
    configured: bool
    reachable: bool
    latency_ms: float | None = None
    key_valid: bool | None = Field(
        default=None, description="OpenRouter, OpenAI-compatible with a key; null when not determined."
    )
    credits: dict[str, Any] | None = Field(default=None, description="OpenRouter GET /key: limit, usage…")
    version: str | None = Field(default=None, description="Ollama only.")
    error: str | None = None


class SyncRequest(BaseModel):
    """Body of ``POST /providers/sync`` (admin-only at the gateway; internal token at the catalog)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [ex.SYNC_REQUEST]})

    provider: ProviderName | None = Field(default=None, description="Omit to sync every enabled provider.")


class SyncResultPublic(BaseModel):
    provider: str
    ok: bool
    total: int
    added: int
    removed: int
    changed: int
    event_recorded: bool
    error: str | None = None


class SyncResultsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.SYNC_RESULTS]})
    items: list[SyncResultPublic]
