"""``/providers*``: the model catalog and provider tests, served by the catalog service.

Parameters are validated here (a bad one answers 422 without a round trip) and the request is forwarded to the
catalog with the validated parameters only; its answer (including its 404 / 422 error bodies) is relayed as is.
Query parameters, bodies and answers are the public contract's models (``llmts_api.catalog``), the same classes
the catalog declares.

A model id must match ``MODEL_ID_PATTERN`` (segments of letters, digits and ``._:@+~-`` that start with a letter,
digit or ``_``): no ``.``/``..`` segment, no empty segment, no encoded slash, so it never reaches another catalog
route. Provider tests and sync are internal catalog routes (the gateway sends ``X-Internal-Token``): sync is
admin-only (403 otherwise); a provider test answers an admin in full and anyone else with a reduced answer —
``provider``, ``configured``, ``reachable``, ``latency_ms`` — without the key's validity, label, credits, usage,
version or error text.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from llmts_api.catalog import (
    ModelLookupQuery,
    ModelPublic,
    ModelsPublic,
    ModelsQuery,
    ProvidersPublic,
    ProviderTestPublic,
    ProviderTestRequest,
    SyncRequest,
    SyncResultsPublic,
)
from llmts_common.errors import InvalidField
from llmts_common.internal import INTERNAL_TOKEN_HEADER
from llmts_common.query import reject_unknown_query
from llmts_gateway.deps import AdminUser, Context, CurrentUser, GatewayContext
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

_ADMIN: dict[int | str, dict[str, Any]] = {
    403: error_response("Needs the admin role", "forbidden", "this operation needs the admin role")
}

router = APIRouter(
    prefix="/providers",
    tags=["providers"],
    responses=_COMMON,
    dependencies=[Depends(reject_unknown_query)],
)

MODEL_ID_MAX_CHARS = 256
_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9._:@+~-]*"
MODEL_ID_PATTERN = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
_PUBLIC_TEST_FIELDS = ("provider", "configured", "reachable", "latency_ms")


def checked_model_id(model_id: str, raw_path: bytes) -> str:
    """The model id when it is a plain catalog id; 422 for dot segments, encoded slashes and anything else."""
    lowered = raw_path.lower()
    if (
        len(model_id) > MODEL_ID_MAX_CHARS
        or not MODEL_ID_PATTERN.fullmatch(model_id)
        or b"%2f" in lowered
        or b"%5c" in lowered
    ):
        raise InvalidField(
            "invalid model id: segments of letters, digits and ._:@+~- separated by single slashes",
            loc=("path", "model_id"),
            type="string_pattern_mismatch",
        )
    return model_id


async def _relay(
    ctx: GatewayContext,
    request: Request,
    method: str,
    path: str,
    *,
    params: dict[str, Any] | None = None,
    json: Any = None,
    internal: bool = False,
) -> Response:
    """Call the catalog with the validated parameters only, and relay its answer (status and body) as is."""
    headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "accept")}
    token = ctx.settings.internal_token_value
    if internal and token:
        headers[INTERNAL_TOKEN_HEADER] = token
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
        404: error_response("Not in the catalog", "model_not_found", "model 'x/y' is not in the catalog"),
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
    path = "/providers/models/" + quote(
        checked_model_id(model_id, request.scope.get("raw_path", b"")), safe="/:@"
    )
    return await _relay(ctx, request, "GET", path, params=query.model_dump())


@router.post(
    "/test",
    response_model=ProviderTestPublic,
    response_model_exclude_unset=True,
    summary="Test a provider: reachable, latency; for admins also key validity, credits (OpenRouter), version",
    description="An admin gets the whole result; any other user only provider, configured, reachable and "
    "latency_ms (the operator's key label, usage and tier stay private).",
    responses=_INVALID,
)
async def run_provider_test(
    request: Request, ctx: Context, user: CurrentUser, body: ProviderTestRequest
) -> Response:
    answer = await _relay(ctx, request, "POST", "/providers/test", json=body.model_dump(), internal=True)
    if user.is_admin or answer.status_code != 200:
        return answer
    full = ProviderTestPublic.model_validate_json(bytes(answer.body))
    return JSONResponse({k: getattr(full, k) for k in _PUBLIC_TEST_FIELDS})


@router.post(
    "/sync",
    response_model=SyncResultsPublic,
    summary="Sync the catalog now (admin only); omit the provider to sync every enabled one",
    responses={**_INVALID, **_ADMIN},
)
async def sync_catalog(
    request: Request, ctx: Context, _admin: AdminUser, body: SyncRequest | None = None
) -> Response:
    payload = body.model_dump() if body else {}
    return await _relay(ctx, request, "POST", "/providers/sync", json=payload, internal=True)
