"""``/providers*``: the model catalog and provider tests, served by the catalog service.

Parameters are validated here (a bad one answers 422 without a round trip) and the request is forwarded to the
catalog with the validated parameters only; its answer (including its 404 / 422 error bodies) is relayed as is.
Query parameters, bodies and answers are the public contract's models (``llmts_api.catalog``), the same classes
the catalog declares.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response

from llmts_api.catalog import (
    ModelLookupQuery,
    ModelPublic,
    ModelsPublic,
    ModelsQuery,
    ProvidersPublic,
    ProviderTestPublic,
    ProviderTestRequest,
)
from llmts_gateway.deps import Context, CurrentUser, GatewayContext
from llmts_gateway.entrypoints.openapi import error_response

_COMMON: dict[int | str, dict[str, Any]] = {
    401: error_response("Missing or invalid bearer token", "unauthorized", "missing bearer token"),
    503: error_response(
        "The catalog service is unavailable", "service_unavailable", "the catalog service is unavailable"
    ),
}
_INVALID: dict[int | str, dict[str, Any]] = {
    422: error_response("Invalid parameter", "validation_error", "invalid request: limit: ...")
}

router = APIRouter(prefix="/providers", tags=["providers"], responses=_COMMON)


async def _relay(
    ctx: GatewayContext,
    request: Request,
    method: str,
    path: str,
    *,
    params: dict[str, Any] | None = None,
    json: Any = None,
) -> Response:
    """Call the catalog with the validated parameters only, and relay its answer (status and body) as is."""
    headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "accept")}
    query = {
        k: (str(v).lower() if isinstance(v, bool) else v) for k, v in (params or {}).items() if v is not None
    }
    resp = await ctx.upstreams.request("catalog", method, path, params=query, json=json, headers=headers)
    return Response(
        content=resp.content,
        status_code=resp.status_code,
        media_type=resp.headers.get("content-type", "application/json"),
    )


@router.get(
    "", response_model=ProvidersPublic, summary="Providers: status, model count, last sync, configured"
)
async def list_providers(request: Request, ctx: Context, _user: CurrentUser) -> Response:
    return await _relay(ctx, request, "GET", "/providers")


@router.get(
    "/models",
    response_model=ModelsPublic,
    summary="Search the model catalog (filters, sort, pages; prices per 1M tokens)",
    responses=_INVALID,
)
async def list_models(
    request: Request, ctx: Context, _user: CurrentUser, query: Annotated[ModelsQuery, Query()]
) -> Response:
    return await _relay(ctx, request, "GET", "/providers/models", params=query.model_dump())


@router.get(
    "/models/{model_id:path}",
    response_model=ModelPublic,
    summary="One model; ids contain slashes and colons (openai/gpt-4o-mini, …:free)",
    responses={
        404: error_response("Not in the catalog", "not_found", "model 'x/y' is not in the catalog"),
        **_INVALID,
    },
)
async def get_model(
    request: Request,
    ctx: Context,
    _user: CurrentUser,
    model_id: str,
    query: Annotated[ModelLookupQuery, Query()],
) -> Response:
    path = "/providers/models/" + quote(model_id, safe="/:@")
    return await _relay(ctx, request, "GET", path, params=query.model_dump())


@router.post(
    "/test",
    response_model=ProviderTestPublic,
    summary="Test a provider: reachable, latency, key validity, credits (OpenRouter) or version (Ollama)",
    responses=_INVALID,
)
async def run_provider_test(
    request: Request, ctx: Context, _user: CurrentUser, body: ProviderTestRequest
) -> Response:
    return await _relay(ctx, request, "POST", "/providers/test", json=body.model_dump())
