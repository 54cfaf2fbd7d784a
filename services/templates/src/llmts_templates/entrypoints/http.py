"""HTTP entrypoint of the templates service (behind the gateway, which forwards the caller's bearer token).

Every route verifies the token itself (JWKS) and acts for ``Principal.user_id``. Thin: parse, call a handler,
shape the answer. Bodies, query parameters and answers are the public contract's models (``llmts_api.templates``),
the same classes the gateway declares, so both OpenAPI documents agree and every answer is checked against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response
from pydantic import ValidationError

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
from llmts_common.auth import JwksVerifier, Principal, bearer_token
from llmts_common.errors import Unprocessable
from llmts_common.query import reject_unknown_query
from llmts_templates import handlers
from llmts_templates.adapters.provider_body import ProviderRequestBuilder
from llmts_templates.checks import shape_errors, validate_payload_with
from llmts_templates.datasets import DatasetDeps
from llmts_templates.domain.document import TemplateDocument, TemplateRecord, TemplateVersion
from llmts_templates.domain.issues import Issue
from llmts_templates.domain.ports import ListFilter, PriceSource
from llmts_templates.entrypoints.merge_patch import read_merge_patch
from llmts_templates.handlers import Deps
from llmts_templates.pipeline_checks import seed_columns
from llmts_templates.preview import preview
from llmts_templates.preview_items import seed_rows
from llmts_templating.pool import RenderPool

TemplateId = Annotated[str, Path(pattern=TEMPLATE_ID_PATTERN)]
VersionNo = Annotated[int, Path(ge=1, le=1_000_000)]
FacetField = Literal["category", "tags"]


@dataclass
class AppServices:
    deps: Deps
    verifier: JwksVerifier
    renderer: RenderPool
    bodies: ProviderRequestBuilder
    prices: PriceSource
    default_model: str
    default_max_tokens: int
    datasets: DatasetDeps | None = None


async def get_context(request: Request) -> AppServices:
    svc: AppServices = request.app.state.services
    return svc


Context = Annotated[AppServices, Depends(get_context)]


async def current_user(svc: Context, authorization: Annotated[str | None, Header()] = None) -> Principal:
    return await svc.verifier.verify(bearer_token(authorization))


CurrentUser = Annotated[Principal, Depends(current_user)]


def summary(record: TemplateRecord) -> dict[str, Any]:
    d = record.document
    return {
        "id": record.id,
        "owner_id": record.owner_id,
        "version": record.version,
        "name": d.name,
        "description": d.description,
        "category": d.category,
        "tags": list(d.tags),
        "visibility": d.visibility,
        "output_format": d.output.format,
        "model_id": d.model.id if d.model else None,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
    }


def version_summary(v: TemplateVersion) -> dict[str, Any]:
    return {
        "version": v.version,
        "created_at": v.created_at.isoformat(),
        "created_by": v.created_by,
        "note": v.note,
        "name": v.document.name,
    }


def _document(body: TemplateCreate) -> TemplateDocument:
    """The domain document of a validated body (same fields and rules; nested models are reused as they are)."""
    return TemplateDocument.model_validate(dict(body))


router = APIRouter(prefix="/templates", tags=["templates"], dependencies=[Depends(reject_unknown_query)])


@router.post("", status_code=201, response_model=TemplatePublic, summary="Create a template (version 1)")
async def create(document: TemplateCreate, user: CurrentUser, svc: Context) -> dict[str, Any]:
    record = await handlers.create_template(_document(document), user_id=user.user_id, deps=svc.deps)
    return record.public()


@router.get("", response_model=TemplatesPublic, summary="List own and public templates")
async def list_(user: CurrentUser, svc: Context, query: Annotated[TemplatesQuery, Query()]) -> dict[str, Any]:
    flt = ListFilter(
        user_id=user.user_id,
        category=query.category,
        tags=tuple(query.tag),
        q=query.q or None,
        visibility=query.visibility,
        only_mine=query.owner == "me",
        limit=query.limit,
        offset=query.offset,
    )
    records, total = await handlers.list_templates(flt, deps=svc.deps)
    return {
        "items": [summary(r) for r in records],
        "total": total,
        "limit": query.limit,
        "offset": query.offset,
    }


async def _facets(user: Principal, svc: AppServices, query: FacetsQuery, field: FacetField) -> dict[str, Any]:
    flt = ListFilter(user_id=user.user_id, visibility=query.visibility, only_mine=query.owner == "me")
    items = await handlers.template_facets(flt, field, deps=svc.deps)
    return {"items": [{"name": name, "count": n} for name, n in items], "total": len(items)}


@router.get("/categories", response_model=FacetsPublic, summary="Categories I can see, with counts")
async def categories(
    user: CurrentUser, svc: Context, query: Annotated[FacetsQuery, Query()]
) -> dict[str, Any]:
    return await _facets(user, svc, query, "category")


@router.get("/tags", response_model=FacetsPublic, summary="Tags I can see, with counts")
async def tags(user: CurrentUser, svc: Context, query: Annotated[FacetsQuery, Query()]) -> dict[str, Any]:
    return await _facets(user, svc, query, "tags")


@router.get(
    "/examples",
    response_model=ExamplesPublic,
    summary="Example templates that can be imported",
    dependencies=[Depends(current_user)],
)
async def examples(svc: Context) -> dict[str, Any]:
    items = [e.public() for e in handlers.list_examples(deps=svc.deps)]
    return {"items": items, "total": len(items)}


@router.post(
    "/examples/{example_id}/import",
    status_code=201,
    response_model=ImportPublic,
    summary="Copy an example into my templates",
)
async def import_example(
    example_id: Annotated[str, Path(pattern=EXAMPLE_ID_PATTERN)],
    user: CurrentUser,
    svc: Context,
    options: Annotated[ImportOptions | None, Body()] = None,
) -> dict[str, Any]:
    opts = options or ImportOptions()
    record, notes = await handlers.import_example(
        example_id, user_id=user.user_id, deps=svc.deps, name=opts.name, visibility=opts.visibility
    )
    return {"template": record.public(), "notes": notes}


@router.post(
    "/validate",
    response_model=ValidationReportPublic,
    response_model_exclude_none=True,
    summary="Validate a template document (200 with errors and warnings)",
)
async def validate(
    payload: Annotated[dict[str, Any], Body()], user: CurrentUser, svc: Context
) -> dict[str, Any]:
    async def seed(doc: TemplateDocument) -> tuple[set[str], list[Issue]]:
        return await seed_columns(doc, owner_id=user.user_id, datasets=svc.deps.datasets)

    report = await validate_payload_with(payload, svc.renderer, seed)
    return report.model_dump(mode="json", exclude_none=True)


@router.post(
    "/preview",
    response_model=PreviewPublic,
    summary="Render one item, the provider request body and estimates",
)
async def preview_(
    req: PreviewRequest,
    user: CurrentUser,
    svc: Context,
    authorization: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    version = None
    if req.template_id is not None:
        if req.version is not None:
            v = await handlers.get_version(req.template_id, req.version, user_id=user.user_id, deps=svc.deps)
            document, version = v.document, v.version
        else:
            record = await handlers.get_readable(req.template_id, user_id=user.user_id, deps=svc.deps)
            document, version = record.document, record.version
    else:
        document = _document_or_422(req.template)
    rows = await seed_rows(
        document,
        user_id=user.user_id,
        datasets=svc.deps.datasets,
        first=req.index,
        count=req.items,
        seed=req.sample_seed,
    )
    result = await preview(
        document,
        req,
        rows=rows,
        renderer=svc.renderer,
        bodies=svc.bodies,
        prices=svc.prices,
        now=svc.deps.clock(),
        default_model=svc.default_model,
        default_max_tokens=svc.default_max_tokens,
        authorization=authorization,
    )
    return {"template_id": req.template_id, "version": version, **result}


def _document_or_422(raw: Any) -> TemplateDocument:
    try:
        return TemplateDocument.model_validate(raw)
    except ValidationError as exc:
        issues = [i.model_dump(exclude_none=True) for i in shape_errors(exc)]
        raise Unprocessable("the template document is invalid", details=issues) from None


@router.post(
    "/import/llm-data-gen",
    status_code=201,
    response_model=ImportPublic,
    summary="Import an llm-data-gen config file as is",
)
async def import_llm_data_gen(
    config: Annotated[dict[str, Any], Body()],
    user: CurrentUser,
    svc: Context,
    query: Annotated[LlmDataGenImportQuery, Query()],
) -> dict[str, Any]:
    record, notes = await handlers.import_llm_data_gen(
        config, user_id=user.user_id, deps=svc.deps, name=query.name, visibility=query.visibility
    )
    return {"template": record.public(), "notes": notes}


@router.get("/{template_id}", response_model=TemplatePublic, summary="Get a template (own, or public)")
async def get(template_id: TemplateId, user: CurrentUser, svc: Context) -> dict[str, Any]:
    record = await handlers.get_readable(template_id, user_id=user.user_id, deps=svc.deps)
    return record.public()


@router.put(
    "/{template_id}",
    response_model=TemplatePublic,
    summary="Replace a template: creates a new immutable version (owner only)",
)
async def put(
    template_id: TemplateId,
    document: TemplateCreate,
    user: CurrentUser,
    svc: Context,
    query: Annotated[TemplateReplaceQuery, Query()],
) -> dict[str, Any]:
    record = await handlers.update_template(
        template_id,
        _document(document),
        user_id=user.user_id,
        deps=svc.deps,
        expected_version=query.expected_version,
    )
    return record.public()


@router.patch(
    "/{template_id}",
    response_model=TemplatePublic,
    summary="Change part of a template (JSON merge patch): creates a new immutable version (owner only)",
    openapi_extra=MERGE_PATCH_OPENAPI,
)
async def patch(
    template_id: TemplateId,
    request: Request,
    user: CurrentUser,
    svc: Context,
    query: Annotated[TemplateReplaceQuery, Query()],
) -> dict[str, Any]:
    record = await handlers.patch_template(
        template_id,
        await read_merge_patch(request),
        user_id=user.user_id,
        deps=svc.deps,
        expected_version=query.expected_version,
    )
    return record.public()


@router.delete("/{template_id}", status_code=204, summary="Delete a template (owner only)")
async def delete(template_id: TemplateId, user: CurrentUser, svc: Context) -> Response:
    await handlers.delete_template(template_id, user_id=user.user_id, deps=svc.deps)
    return Response(status_code=204)


@router.get(
    "/{template_id}/versions", response_model=VersionsPublic, summary="Versions of a template, newest first"
)
async def versions(
    template_id: TemplateId, user: CurrentUser, svc: Context, query: Annotated[VersionsQuery, Query()]
) -> dict[str, Any]:
    limit, offset = query.limit, query.offset
    items, total, current = await handlers.list_versions(
        template_id, user_id=user.user_id, limit=limit, offset=offset, deps=svc.deps
    )
    return {
        "template_id": template_id,
        "current_version": current,
        "items": [version_summary(v) for v in items],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.get("/{template_id}/versions/{n}", response_model=VersionPublic, summary="One version of a template")
async def version(template_id: TemplateId, n: VersionNo, user: CurrentUser, svc: Context) -> dict[str, Any]:
    v = await handlers.get_version(template_id, n, user_id=user.user_id, deps=svc.deps)
    return v.public()


@router.get(
    "/{template_id}/diff", response_model=TemplateDiffPublic, summary="Structured diff between two versions"
)
async def diff(
    template_id: TemplateId, user: CurrentUser, svc: Context, query: Annotated[DiffQuery, Query()]
) -> dict[str, Any]:
    result = await handlers.diff_versions(
        template_id, from_version=query.from_, to_version=query.to, user_id=user.user_id, deps=svc.deps
    )
    return result.model_dump(mode="json", by_alias=True)


@router.post(
    "/{template_id}/rollback/{n}",
    response_model=TemplatePublic,
    summary="New version equal to version n (owner only)",
)
async def rollback(template_id: TemplateId, n: VersionNo, user: CurrentUser, svc: Context) -> dict[str, Any]:
    record = await handlers.rollback_template(template_id, n, user_id=user.user_id, deps=svc.deps)
    return record.public()
