"""``/templates*``: template documents, versions, validation, preview, examples and imports (templates service).

Every route needs a bearer token. Bodies and parameters are validated here (a malformed request answers 422
without a round trip), then the request is forwarded unchanged (body, query, ``Authorization``) and the
service's answer, including its error bodies, is relayed as is. The service verifies the token again and
enforces ownership: another user's private template is 404, a public one is read-only (403 on writes). Bodies,
query parameters and answers are the public contract's models (``llmts_api.templates``), the same classes the
templates service declares.
"""

# ruff: noqa: ARG001  -- body/query parameters are declared for validation and the OpenAPI document;
# the request itself is forwarded unchanged, so the handlers do not read them.
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from llmts_api import examples as ex
from llmts_api.templates import (
    EXAMPLE_ID_PATTERN,
    MERGE_PATCH_OPENAPI,
    TEMPLATE_ID_PATTERN,
    DiffQuery,
    ExamplesPublic,
    FacetsPublic,
    FacetsQuery,
    ImportOptions,
    ImportPublic,
    LlmDataGenImportQuery,
    PreviewPublic,
    PreviewRequest,
    TemplateCreate,
    TemplateDiffPublic,
    TemplatePublic,
    TemplateReplaceQuery,
    TemplatesPublic,
    TemplatesQuery,
    ValidationReportPublic,
    VersionPublic,
    VersionsPublic,
    VersionsQuery,
)
from llmts_common.query import reject_unknown_query
from llmts_gateway.deps import Context, CurrentUser
from llmts_gateway.entrypoints.openapi import error_response

TemplateId = Annotated[str, Path(pattern=TEMPLATE_ID_PATTERN, description="Template id.")]
ExampleId = Annotated[str, Path(pattern=EXAMPLE_ID_PATTERN, examples=["quiz"])]
VersionNo = Annotated[int, Path(ge=1, le=1_000_000, description="Version number (1-based).")]


# ------------------------------------------------------------------------------------------------- errors


_COMMON: dict[int | str, dict[str, Any]] = {
    401: error_response("Missing or invalid bearer token", "unauthorized", "missing bearer token"),
    422: error_response("Invalid request", "validation_error", "invalid request: name: Field required"),
    503: error_response(
        "The templates service is unavailable", "service_unavailable", "the templates service is unavailable"
    ),
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: error_response(
        "No such template, or another user's private one", "template_not_found", "template not found"
    )
}
_OWNER: dict[int | str, dict[str, Any]] = {
    **_NOT_FOUND,
    403: error_response(
        "A public template of another user is read-only",
        "not_owner",
        "only the owner can change this template",
    ),
    409: error_response(
        "Changed concurrently", "version_conflict", "the template was changed concurrently; reload and retry"
    ),
}

router = APIRouter(
    prefix="/templates",
    tags=["templates"],
    responses=_COMMON,
    dependencies=[Depends(reject_unknown_query)],  # 422 here, without a round trip
)


async def _forward(ctx: Context, request: Request, path: str) -> Response:
    return await ctx.upstreams.forward("templates", request, path)


# ------------------------------------------------------------------------------------------------- routes
@router.post("", status_code=201, response_model=TemplatePublic, summary="Create a template (version 1)")
async def create_template(
    request: Request, ctx: Context, _user: CurrentUser, body: TemplateCreate
) -> Response:
    return await _forward(ctx, request, "/templates")


@router.get("", response_model=TemplatesPublic, summary="List my templates and public ones (filters, pages)")
async def list_templates(
    request: Request, ctx: Context, _user: CurrentUser, query: Annotated[TemplatesQuery, Query()]
) -> Response:
    return await _forward(ctx, request, "/templates")


@router.get(
    "/categories",
    response_model=FacetsPublic,
    summary="Categories of my templates and public ones, with counts (case variants counted together)",
)
async def list_categories(
    request: Request, ctx: Context, _user: CurrentUser, query: Annotated[FacetsQuery, Query()]
) -> Response:
    return await _forward(ctx, request, "/templates/categories")


@router.get(
    "/tags",
    response_model=FacetsPublic,
    summary="Tags of my templates and public ones, with counts (case variants counted together)",
)
async def list_tags(
    request: Request, ctx: Context, _user: CurrentUser, query: Annotated[FacetsQuery, Query()]
) -> Response:
    return await _forward(ctx, request, "/templates/tags")


@router.get("/examples", response_model=ExamplesPublic, summary="Example templates that can be imported")
async def list_examples(request: Request, ctx: Context, _user: CurrentUser) -> Response:
    return await _forward(ctx, request, "/templates/examples")


@router.post(
    "/examples/{example_id}/import",
    status_code=201,
    response_model=ImportPublic,
    summary="Copy an example into my templates: {template, notes}, like the llm-data-gen import",
    responses={404: error_response("No such example", "example_not_found", "example 'x' not found")},
)
async def import_example(
    request: Request,
    ctx: Context,
    _user: CurrentUser,
    example_id: ExampleId,
    options: Annotated[ImportOptions | None, Body()] = None,
) -> Response:
    return await _forward(ctx, request, f"/templates/examples/{example_id}/import")


@router.post(
    "/validate",
    response_model=ValidationReportPublic,
    summary="Validate a template document: Jinja syntax (with lines), variables, JSON Schema, rules",
)
async def validate_template(
    request: Request,
    ctx: Context,
    _user: CurrentUser,
    document: Annotated[
        dict[str, Any],
        Body(
            description="A template document; any shape, problems are reported.",
            examples=[ex.VALIDATE_DOCUMENT],
        ),
    ],
) -> Response:
    return await _forward(ctx, request, "/templates/validate")


@router.post(
    "/preview",
    response_model=PreviewPublic,
    summary="Render one item's prompts, the exact provider request body, token and cost estimates",
    responses={
        **_NOT_FOUND,
        422: error_response(
            "Invalid request, or the template does not render",
            "render_error",
            "the template does not render: 'x' is undefined",
        ),
    },
)
async def preview_template(
    request: Request, ctx: Context, _user: CurrentUser, body: PreviewRequest
) -> Response:
    return await _forward(ctx, request, "/templates/preview")


@router.post(
    "/import/llm-data-gen",
    status_code=201,
    response_model=ImportPublic,
    summary="Import an llm-data-gen config file as is (meta, api, schema hints, prompts, tasks, output)",
    responses={
        422: error_response(
            "Not a mappable config",
            "invalid_llm_data_gen_config",
            "json output needs a 'schema' object with a 'type'",
        )
    },
)
async def import_llm_data_gen(
    request: Request,
    ctx: Context,
    _user: CurrentUser,
    config: Annotated[
        dict[str, Any],
        Body(description="The llm-data-gen config JSON, unchanged.", examples=[ex.LLM_DATA_GEN_CONFIG]),
    ],
    query: Annotated[LlmDataGenImportQuery, Query()],
) -> Response:
    return await _forward(ctx, request, "/templates/import/llm-data-gen")


@router.get("/{template_id}", response_model=TemplatePublic, summary="Get a template", responses=_NOT_FOUND)
async def get_template(
    request: Request, ctx: Context, _user: CurrentUser, template_id: TemplateId
) -> Response:
    return await _forward(ctx, request, f"/templates/{template_id}")


@router.put(
    "/{template_id}",
    response_model=TemplatePublic,
    summary="Replace a template; creates a new immutable version (owner only)",
    responses=_OWNER,
)
async def update_template(
    request: Request,
    ctx: Context,
    _user: CurrentUser,
    template_id: TemplateId,
    body: TemplateCreate,
    _query: Annotated[TemplateReplaceQuery, Query()],
) -> Response:
    return await _forward(ctx, request, f"/templates/{template_id}")


@router.patch(
    "/{template_id}",
    response_model=TemplatePublic,
    summary="Change part of a template (JSON merge patch, RFC 7396): a new immutable version (owner only)",
    responses={
        **_OWNER,
        415: error_response(
            "Neither application/merge-patch+json nor application/json",
            "unsupported_media_type",
            "a template patch is application/merge-patch+json (or application/json), not text/plain",
        ),
    },
    openapi_extra=MERGE_PATCH_OPENAPI,
)
async def patch_template(
    request: Request,
    ctx: Context,
    _user: CurrentUser,
    template_id: TemplateId,
    _query: Annotated[TemplateReplaceQuery, Query()],
) -> Response:
    return await _forward(ctx, request, f"/templates/{template_id}")


@router.delete("/{template_id}", status_code=204, summary="Delete a template (owner only)", responses=_OWNER)
async def delete_template(
    request: Request, ctx: Context, _user: CurrentUser, template_id: TemplateId
) -> Response:
    return await _forward(ctx, request, f"/templates/{template_id}")


@router.get(
    "/{template_id}/versions",
    response_model=VersionsPublic,
    summary="Versions, newest first",
    responses=_NOT_FOUND,
)
async def list_versions(
    request: Request,
    ctx: Context,
    _user: CurrentUser,
    template_id: TemplateId,
    query: Annotated[VersionsQuery, Query()],
) -> Response:
    return await _forward(ctx, request, f"/templates/{template_id}/versions")


@router.get(
    "/{template_id}/versions/{n}", response_model=VersionPublic, summary="One version", responses=_NOT_FOUND
)
async def get_version(
    request: Request, ctx: Context, _user: CurrentUser, template_id: TemplateId, n: VersionNo
) -> Response:
    return await _forward(ctx, request, f"/templates/{template_id}/versions/{n}")


@router.get(
    "/{template_id}/diff",
    response_model=TemplateDiffPublic,
    summary="Structured diff of two versions: prompts, schema, rules, model",
    responses=_NOT_FOUND,
)
async def diff_versions(
    request: Request,
    ctx: Context,
    _user: CurrentUser,
    template_id: TemplateId,
    query: Annotated[DiffQuery, Query()],
) -> Response:
    return await _forward(ctx, request, f"/templates/{template_id}/diff")


@router.post(
    "/{template_id}/rollback/{n}",
    response_model=TemplatePublic,
    summary="Roll back: a new version equal to version n (owner only)",
    responses=_OWNER,
)
async def rollback(
    request: Request, ctx: Context, _user: CurrentUser, template_id: TemplateId, n: VersionNo
) -> Response:
    return await _forward(ctx, request, f"/templates/{template_id}/rollback/{n}")
