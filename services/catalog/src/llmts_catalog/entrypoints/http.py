"""HTTP API of the catalog (``/providers*``), reached through the gateway."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from pydantic import BaseModel, Field

from llmts_catalog import handlers
from llmts_catalog.domain.catalog import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    ModelQuery,
    ProviderName,
    ProviderState,
    ProviderStatus,
    SortKey,
    SortOrder,
)
from llmts_catalog.domain.ports import CatalogSnapshot, CatalogSource
from llmts_catalog.settings import CatalogSettings
from llmts_common.auth import JwksVerifier, bearer_token
from llmts_common.errors import error_body
from llmts_providers.base import Provider
from llmts_providers.models import ConnectionTestResult, ModelRecord

MODALITY_PATTERN = r"^[a-z][a-z_-]{0,31}$"


@dataclass
class CatalogContext:
    settings: CatalogSettings
    catalog: CatalogSource
    provider: Callable[[str], Provider]
    configured: Mapping[str, bool]
    sync_all: Callable[[Sequence[str] | None], Awaitable[list[handlers.SyncOutcome]]]
    verifier: JwksVerifier | None = None


async def get_context(request: Request) -> CatalogContext:
    ctx: CatalogContext = request.app.state.catalog
    return ctx


Context = Annotated[CatalogContext, Depends(get_context)]


async def require_auth(ctx: Context, authorization: Annotated[str | None, Header()] = None) -> None:
    """Only when ``CATALOG_REQUIRE_AUTH`` is on; by default the gateway is the authenticating edge."""
    if ctx.verifier is not None:
        await ctx.verifier.verify(bearer_token(authorization))


# --- public schemas --------------------------------------------------------------------------------------
class ModelPricingPublic(BaseModel):
    """USD prices as exact decimals (JSON strings); ``null`` = unknown (e.g. router models), ``"0"`` = free."""

    prompt: Decimal | None = Field(description="USD per 1M input tokens.", examples=["0.15"])
    completion: Decimal | None = Field(description="USD per 1M output tokens.", examples=["0.6"])
    request: Decimal | None = Field(description="USD per request.", examples=["0"])
    web_search: Decimal | None = Field(description="USD per web search.", examples=["0.004"])


class ModelPublic(BaseModel):
    id: str = Field(examples=["meta-llama/llama-3.3-70b-instruct:free"])
    provider: ProviderName
    name: str
    description: str | None = None
    context_length: int | None = None
    max_completion_tokens: int | None = None
    input_modalities: list[str]
    output_modalities: list[str]
    pricing: ModelPricingPublic
    free: bool = Field(description="Id ends in ':free' or prompt and completion cost nothing.")
    online: bool = Field(description="Web search is priced or supported.")
    structured_output: bool = Field(description="Supports response_format / structured_outputs.")
    tools: bool
    created: datetime | None = None
    supported_parameters: list[str] | None = None
    raw: dict[str, Any] | None = Field(default=None, description="The provider's own fields, as listed.")
    stale: bool = Field(description="The provider's last sync failed or is old; this is the last good copy.")
    last_synced_at: datetime | None = Field(description="When this provider's catalog was last synced.")


class ModelsPublic(BaseModel):
    total: int = Field(description="Models matching the filters (all pages).")
    limit: int
    offset: int
    items: list[ModelPublic]


class ProviderPublic(BaseModel):
    name: str
    enabled: bool = Field(description="Synced by this deployment (CATALOG_PROVIDERS).")
    configured: bool = Field(description="OpenRouter: an API key is set; Ollama: a base URL is set.")
    status: ProviderStatus = Field(
        description="ok | stale (serving the last good copy) | unavailable (never synced) | pending | disabled."
    )
    stale: bool
    model_count: int
    last_synced_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_error: str | None = None


class ProvidersPublic(BaseModel):
    items: list[ProviderPublic]


class ProviderTestRequest(BaseModel):
    provider: ProviderName


class ConnectionTestPublic(BaseModel):
    provider: str
    configured: bool
    reachable: bool
    latency_ms: float | None = None
    key_valid: bool | None = Field(default=None, description="OpenRouter only; null when not determined.")
    credits: dict[str, Any] | None = Field(default=None, description="OpenRouter GET /key: limit, usage…")
    version: str | None = Field(default=None, description="Ollama only.")
    error: str | None = None


class SyncRequest(BaseModel):
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
    items: list[SyncResultPublic]


# --- mapping ---------------------------------------------------------------------------------------------
def _state_view(state: ProviderState, ctx: CatalogContext, now: datetime) -> ProviderPublic:
    after = ctx.settings.stale_after_seconds
    return ProviderPublic(
        name=state.name,
        enabled=state.enabled,
        configured=state.configured,
        status=state.status(now, after),
        stale=state.is_stale(now, after),
        model_count=state.model_count,
        last_synced_at=state.last_synced_at,
        last_attempt_at=state.last_attempt_at,
        last_error=state.last_error if state.failing() else None,
    )


def model_view(
    record: ModelRecord, snapshot: CatalogSnapshot, ctx: CatalogContext, now: datetime, *, verbose: bool
) -> ModelPublic:
    state = snapshot.states.get(record.provider)
    stale = state.is_stale(now, ctx.settings.stale_after_seconds) if state else False
    data: dict[str, Any] = {
        "id": record.id,
        "provider": record.provider,
        "name": record.name,
        "context_length": record.context_length,
        "max_completion_tokens": record.max_completion_tokens,
        "input_modalities": record.input_modalities,
        "output_modalities": record.output_modalities,
        "pricing": record.pricing.model_dump(),
        "free": record.free,
        "online": record.online,
        "structured_output": record.structured_output,
        "tools": record.tools,
        "created": record.created,
        "stale": stale,
        "last_synced_at": state.last_synced_at if state else None,
    }
    if verbose:
        data.update(
            description=record.description,
            supported_parameters=record.supported_parameters,
            raw=record.raw,
        )
    return ModelPublic.model_validate(data)


_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {
        "description": 'Invalid parameter: `{"error": {"code": "validation_error", ...}}`',
        "content": {
            "application/json": {"example": error_body("validation_error", "invalid request: limit")}
        },
    }
}

router = APIRouter(prefix="/providers", tags=["providers"], dependencies=[Depends(require_auth)])


@router.get("", response_model=ProvidersPublic, summary="Providers with sync status and model counts")
async def list_providers(ctx: Context) -> ProvidersPublic:
    states = await handlers.provider_states(catalog=ctx.catalog)
    now = handlers.utcnow()
    return ProvidersPublic(items=[_state_view(s, ctx, now) for s in states])


@router.get(
    "/models",
    response_model=ModelsPublic,
    response_model_exclude_unset=True,
    summary="Search the model catalog",
    responses=_ERRORS,
)
async def list_models(
    ctx: Context,
    provider: Annotated[ProviderName | None, Query(description="openrouter | ollama")] = None,
    free: Annotated[bool | None, Query(description="Only free (or only paid) models.")] = None,
    online: Annotated[bool | None, Query(description="Web search priced or supported.")] = None,
    structured_output: Annotated[bool | None, Query(description="Supports JSON-schema output.")] = None,
    tools: Annotated[bool | None, Query(description="Supports tool calling.")] = None,
    min_context: Annotated[
        int | None, Query(ge=0, le=100_000_000, description="Minimum context tokens.")
    ] = None,
    modality: Annotated[
        str | None, Query(pattern=MODALITY_PATTERN, description="Input or output modality, e.g. image.")
    ] = None,
    input_modality: Annotated[str | None, Query(pattern=MODALITY_PATTERN)] = None,
    output_modality: Annotated[str | None, Query(pattern=MODALITY_PATTERN)] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Words to find in id/name/description.")
    ] = None,
    sort: Annotated[
        SortKey, Query(description="price (prompt+completion per 1M) | context | name | created")
    ] = "name",
    order: Annotated[SortOrder, Query(description="asc | desc; unknown values sort last")] = "asc",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    verbose: Annotated[bool, Query(description="Full record (description, parameters, raw fields).")] = True,
) -> ModelsPublic:
    query = ModelQuery(
        provider=provider,
        free=free,
        online=online,
        structured_output=structured_output,
        tools=tools,
        min_context=min_context,
        modality=modality,
        input_modality=input_modality,
        output_modality=output_modality,
        q=q,
        sort=sort,
        order=order,
        limit=limit,
        offset=offset,
    )
    page, snapshot = await handlers.list_models(query, catalog=ctx.catalog)
    now = handlers.utcnow()
    return ModelsPublic(
        total=page.total,
        limit=page.limit,
        offset=page.offset,
        items=[model_view(r, snapshot, ctx, now, verbose=verbose) for r in page.items],
    )


@router.get(
    "/models/{model_id:path}",
    response_model=ModelPublic,
    response_model_exclude_unset=True,
    summary="One model (ids contain slashes and colons)",
    responses={404: {"description": "Not in the catalog"}, **_ERRORS},
)
async def get_model(
    ctx: Context,
    model_id: str,
    provider: Annotated[
        ProviderName | None, Query(description="Disambiguate an id both providers use.")
    ] = None,
    verbose: bool = True,
) -> ModelPublic:
    record, snapshot = await handlers.get_model(model_id, catalog=ctx.catalog, provider=provider)
    return model_view(record, snapshot, ctx, handlers.utcnow(), verbose=verbose)


@router.post(
    "/test",
    response_model=ConnectionTestPublic,
    summary="Test a provider: reachable, latency, key, credits / version",
    responses=_ERRORS,
)
async def test_provider(ctx: Context, body: ProviderTestRequest) -> ConnectionTestPublic:
    result: ConnectionTestResult = await handlers.test_provider(
        body.provider, provider=ctx.provider(body.provider)
    )
    return ConnectionTestPublic(configured=ctx.configured.get(body.provider, False), **result.model_dump())


@router.post(
    "/sync",
    response_model=SyncResultsPublic,
    summary="Sync now (internal: not exposed by the gateway)",
    responses=_ERRORS,
)
async def sync_now(ctx: Context, body: SyncRequest | None = None) -> SyncResultsPublic:
    names = [body.provider] if body and body.provider else None
    outcomes = await ctx.sync_all(names)
    return SyncResultsPublic(
        items=[
            SyncResultPublic(
                provider=o.provider,
                ok=o.ok,
                total=o.total,
                added=o.added,
                removed=o.removed,
                changed=o.changed,
                event_recorded=o.event_recorded,
                error=o.error,
            )
            for o in outcomes
        ]
    )


def mount(app: FastAPI, ctx: CatalogContext) -> None:
    app.state.catalog = ctx
    app.include_router(router)
