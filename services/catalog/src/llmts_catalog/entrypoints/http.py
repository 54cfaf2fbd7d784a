"""HTTP API of the catalog (``/providers*``), reached through the gateway.

Query parameters, bodies and answers are the public contract's models (``llmts_api.catalog``), the same classes
the gateway declares.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request

from llmts_api.catalog import (
    ModelLookupQuery,
    ModelPublic,
    ModelsPublic,
    ModelsQuery,
    ProviderPublic,
    ProvidersPublic,
    ProviderTestPublic,
    ProviderTestRequest,
    SyncRequest,
    SyncResultPublic,
    SyncResultsPublic,
)
from llmts_catalog import handlers
from llmts_catalog.domain.catalog import ModelQuery, ProviderState
from llmts_catalog.domain.ports import CatalogSnapshot, CatalogSource
from llmts_catalog.settings import CatalogSettings
from llmts_common.auth import JwksVerifier, bearer_token
from llmts_common.errors import error_body
from llmts_common.internal import check_internal_token
from llmts_common.query import reject_unknown_query
from llmts_providers.base import Provider
from llmts_providers.models import ConnectionTestResult, ModelRecord


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


async def require_internal(ctx: Context, x_internal_token: Annotated[str | None, Header()] = None) -> None:
    """Provider tests (the operator's key details) and sync are service-to-service: ``INTERNAL_TOKEN`` only."""
    check_internal_token(ctx.settings.internal_token_value, x_internal_token)


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

router = APIRouter(
    prefix="/providers",
    tags=["providers"],
    dependencies=[Depends(reject_unknown_query), Depends(require_auth)],
)


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
async def list_models(ctx: Context, params: Annotated[ModelsQuery, Query()]) -> ModelsPublic:
    query = ModelQuery(**params.model_dump(exclude={"verbose"}))
    page, snapshot = await handlers.list_models(query, catalog=ctx.catalog)
    now = handlers.utcnow()
    return ModelsPublic(
        total=page.total,
        limit=page.limit,
        offset=page.offset,
        items=[model_view(r, snapshot, ctx, now, verbose=params.verbose) for r in page.items],
    )


@router.get(
    "/models/{model_id:path}",
    response_model=ModelPublic,
    response_model_exclude_unset=True,
    summary="One model (ids contain slashes and colons)",
    responses={404: {"description": "Not in the catalog"}, **_ERRORS},
)
async def get_model(ctx: Context, model_id: str, params: Annotated[ModelLookupQuery, Query()]) -> ModelPublic:
    record, snapshot = await handlers.get_model(model_id, catalog=ctx.catalog, provider=params.provider)
    return model_view(record, snapshot, ctx, handlers.utcnow(), verbose=params.verbose)


@router.post(
    "/test",
    response_model=ProviderTestPublic,
    summary="Test a provider: reachable, latency, key, credits / version (internal: X-Internal-Token)",
    responses=_ERRORS,
    dependencies=[Depends(require_internal)],
)
async def test_provider(ctx: Context, body: ProviderTestRequest) -> ProviderTestPublic:
    result: ConnectionTestResult = await handlers.test_provider(
        body.provider, provider=ctx.provider(body.provider)
    )
    return ProviderTestPublic(configured=ctx.configured.get(body.provider, False), **result.model_dump())


@router.post(
    "/sync",
    response_model=SyncResultsPublic,
    summary="Sync now (internal: X-Internal-Token; admins reach it through the gateway)",
    responses=_ERRORS,
    dependencies=[Depends(require_internal)],
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
