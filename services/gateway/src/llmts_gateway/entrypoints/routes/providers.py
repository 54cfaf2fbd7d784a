"""``/providers*``: the model catalog and provider tests, served by the catalog service.

Parameters are validated here (a bad one answers 422 without a round trip) and the request is forwarded to the
catalog unchanged; its answer (including its 404 / 422 error bodies) is relayed as is.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from llmts_gateway.deps import Context, CurrentUser, GatewayContext
from llmts_gateway.entrypoints.openapi import error_response

ProviderName = Literal["openrouter", "ollama"]
MODALITY_PATTERN = r"^[a-z][a-z_-]{0,31}$"


class ModelPricingPublic(BaseModel):
    """USD prices as exact decimals (JSON strings); ``null`` = unknown (router models), ``"0"`` = free."""

    prompt: Decimal | None = Field(description="USD per 1M input tokens.", examples=["0.15"])
    completion: Decimal | None = Field(description="USD per 1M output tokens.", examples=["0.6"])
    request: Decimal | None = Field(default=None, description="USD per request.")
    web_search: Decimal | None = Field(default=None, description="USD per web search.")


class ModelPublic(BaseModel):
    id: str = Field(examples=["meta-llama/llama-3.3-70b-instruct:free"])
    provider: ProviderName
    name: str
    description: str | None = Field(default=None, description="Verbose only.")
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
    supported_parameters: list[str] | None = Field(default=None, description="Verbose only.")
    raw: dict[str, Any] | None = Field(default=None, description="Verbose only: the provider's own fields.")
    stale: bool = Field(description="The provider's last sync failed; this is its last good copy.")
    last_synced_at: datetime | None = None


class ModelsPublic(BaseModel):
    total: int = Field(description="Models matching the filters, over all pages.")
    limit: int
    offset: int
    items: list[ModelPublic]


class ProviderPublic(BaseModel):
    name: str
    enabled: bool
    configured: bool = Field(description="OpenRouter: an API key is set; Ollama: a base URL is set.")
    status: Literal["ok", "stale", "unavailable", "pending", "disabled"]
    stale: bool
    model_count: int
    last_synced_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_error: str | None = None


class ProvidersPublic(BaseModel):
    items: list[ProviderPublic]


class ProviderTest(BaseModel):
    provider: ProviderName


class ProviderTestPublic(BaseModel):
    provider: str
    configured: bool
    reachable: bool
    latency_ms: float | None = None
    key_valid: bool | None = Field(default=None, description="OpenRouter; null when not determined.")
    credits: dict[str, Any] | None = Field(default=None, description="OpenRouter GET /key: limit, usage…")
    version: str | None = Field(default=None, description="Ollama.")
    error: str | None = None


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
    request: Request,
    ctx: Context,
    _user: CurrentUser,
    provider: Annotated[ProviderName | None, Query(description="openrouter | ollama")] = None,
    free: Annotated[bool | None, Query(description="Only free (true) or only paid (false) models.")] = None,
    online: Annotated[bool | None, Query(description="Web search priced or supported.")] = None,
    structured_output: Annotated[bool | None, Query(description="Supports JSON-schema output.")] = None,
    tools: Annotated[bool | None, Query(description="Supports tool calling.")] = None,
    min_context: Annotated[
        int | None, Query(ge=0, le=100_000_000, description="Minimum context tokens.")
    ] = None,
    modality: Annotated[
        str | None, Query(pattern=MODALITY_PATTERN, description="An input or output modality, e.g. image.")
    ] = None,
    input_modality: Annotated[str | None, Query(pattern=MODALITY_PATTERN)] = None,
    output_modality: Annotated[str | None, Query(pattern=MODALITY_PATTERN)] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Words to find in id, name, description.")
    ] = None,
    sort: Annotated[
        Literal["price", "context", "name", "created"],
        Query(description="price = prompt + completion per 1M tokens; unknown values sort last."),
    ] = "name",
    order: Annotated[Literal["asc", "desc"], Query()] = "asc",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    verbose: Annotated[bool, Query(description="Full record (description, parameters, raw fields).")] = True,
) -> Response:
    params = {
        "provider": provider,
        "free": free,
        "online": online,
        "structured_output": structured_output,
        "tools": tools,
        "min_context": min_context,
        "modality": modality,
        "input_modality": input_modality,
        "output_modality": output_modality,
        "q": q,
        "sort": sort,
        "order": order,
        "limit": limit,
        "offset": offset,
        "verbose": verbose,
    }
    return await _relay(ctx, request, "GET", "/providers/models", params=params)


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
    provider: Annotated[
        ProviderName | None, Query(description="Disambiguate an id both providers use.")
    ] = None,
    verbose: bool = True,
) -> Response:
    path = "/providers/models/" + quote(model_id, safe="/:@")
    return await _relay(ctx, request, "GET", path, params={"provider": provider, "verbose": verbose})


@router.post(
    "/test",
    response_model=ProviderTestPublic,
    summary="Test a provider: reachable, latency, key validity, credits (OpenRouter) or version (Ollama)",
    responses=_INVALID,
)
async def run_provider_test(
    request: Request, ctx: Context, _user: CurrentUser, body: ProviderTest
) -> Response:
    return await _relay(ctx, request, "POST", "/providers/test", json=body.model_dump())
