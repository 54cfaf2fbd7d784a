"""``/templates*``: template documents, versions, validation, preview, examples and imports (templates service).

Every route needs a bearer token. Bodies and parameters are validated here (a malformed request answers 422
without a round trip), then the request is forwarded unchanged (body, query, ``Authorization``) and the
service's answer, including its error bodies, is relayed as is. The service verifies the token again and
enforces ownership: another user's private template is 404, a public one is read-only (403 on writes).
"""

# ruff: noqa: ARG001  -- body/query parameters are declared for validation and the OpenAPI document;
# the request itself is forwarded unchanged, so the handlers do not read them.
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from llmts_gateway.deps import Context, CurrentUser
from llmts_gateway.entrypoints.openapi import error_response

TemplateId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Template id.")]
ExampleId = Annotated[str, Path(pattern=r"^[a-z0-9-]{1,64}$", examples=["quiz"])]
VersionNo = Annotated[int, Path(ge=1, le=1_000_000, description="Version number (1-based).")]
Visibility = Literal["private", "public"]


# ------------------------------------------------------------------------------------------------ schemas
class OutputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["json", "text"] = Field(default="json", description="json: one JSON item per request.")


class PromptsSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    system: str = Field(default="", description="Jinja2 (sandboxed, StrictUndefined).")
    user: str = Field(min_length=1, description="Jinja2; llm-data-gen `{placeholders}` also work.")


class ValidationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["strict", "custom", "none"] = "strict"
    rules: list[dict[str, Any]] = Field(
        default_factory=list,
        examples=[
            [
                {"path": "question", "min_length": 10, "max_length": 300},
                {"path": "answer", "pattern": "^[A-D]$"},
            ]
        ],
    )


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: Literal["openrouter", "ollama"] | None = None
    id: str = Field(min_length=1, max_length=300, examples=["openai/gpt-4o-mini"])
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)


class TemplateCreate(BaseModel):
    """The template document (v1). Unknown top-level keys are refused; ``schema`` is required for json output."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    name: str = Field(min_length=1, max_length=200, examples=["Quiz questions"])
    description: str = Field(default="", max_length=5000)
    category: str | None = Field(default=None, max_length=100, examples=["education"])
    tags: list[str] = Field(default_factory=list, max_length=32, examples=[["quiz"]])
    visibility: Visibility = Field(
        default="private", description="public: readable by all, writable by the owner."
    )
    output: OutputSpec = Field(default_factory=OutputSpec)
    prompts: PromptsSpec
    json_schema: dict[str, Any] | None = Field(
        default=None, alias="schema", description="JSON Schema (2020-12; draft-07 accepted) of ONE item."
    )
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    variables: dict[str, Any] = Field(default_factory=dict, description="Defaults for custom variables.")
    tasks: list[dict[str, Any]] = Field(
        default_factory=list, description="Rows of variables, each with a count."
    )
    model: ModelSpec | None = None
    metadata: dict[str, Any] = Field(default_factory=dict, description="Free-form provenance; not rendered.")


class TemplatePublic(TemplateCreate):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, serialize_by_alias=True)

    id: str
    owner_id: str
    version: int = Field(description="Current version; every PUT or rollback adds one.")
    created_at: datetime
    updated_at: datetime


class TemplateSummary(BaseModel):
    id: str
    owner_id: str
    version: int
    name: str
    description: str
    category: str | None
    tags: list[str]
    visibility: Visibility
    output_format: Literal["json", "text"]
    model_id: str | None
    created_at: datetime
    updated_at: datetime


class TemplatesPublic(BaseModel):
    items: list[TemplateSummary]
    total: int = Field(description="Templates matching the filters, over all pages.")
    limit: int
    offset: int


class VersionSummary(BaseModel):
    version: int
    created_at: datetime
    created_by: str
    note: str | None = Field(default=None, examples=["rollback to 2"])
    name: str


class VersionsPublic(BaseModel):
    template_id: str
    current_version: int
    items: list[VersionSummary] = Field(description="Newest first.")
    total: int
    limit: int
    offset: int


class VersionPublic(BaseModel):
    template_id: str
    version: int
    created_at: datetime
    created_by: str
    note: str | None = None
    document: TemplateCreate


class Change(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    path: str = Field(examples=["schema.properties.answer.pattern"])
    op: Literal["added", "removed", "changed"]
    from_: Any = Field(default=None, alias="from")
    to: Any = None


class PromptDiff(BaseModel):
    changed: bool
    unified: list[str] = Field(description="Unified diff lines.")


class RulesDiff(BaseModel):
    changed: bool
    added: list[dict[str, Any]]
    removed: list[dict[str, Any]]
    mode: Change | None = None


class TemplateDiffPublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    from_version: int
    to_version: int
    changed: bool
    prompts: dict[str, PromptDiff] = Field(description="`system` and `user`.")
    schema_changes: list[Change] = Field(alias="schema")
    rules: RulesDiff
    model: list[Change]
    other: list[Change] = Field(description="name, description, visibility, output, variables, tasks …")


class Issue(BaseModel):
    path: str = Field(examples=["prompts.user"])
    message: str
    line: int | None = None
    kind: str | None = Field(default=None, examples=["syntax"])


class ValidationReportPublic(BaseModel):
    valid: bool
    errors: list[Issue]
    warnings: list[Issue] = Field(
        description="Undefined variables, unknown placeholders, rule paths missing from the schema …"
    )


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    version: int | None = Field(default=None, ge=1, description="With template_id: a past version.")
    template: dict[str, Any] | None = Field(default=None, description="An unsaved template document.")
    variables: dict[str, Any] = Field(default_factory=dict, description="Request variables (win over all).")
    index: int = Field(default=0, ge=0, le=10_000_000, description="0-based item index in the job.")
    task: int | dict[str, Any] | None = Field(
        default=None, description="A task row, or the position of one of the template's tasks."
    )
    model: str | ModelSpec | None = Field(default=None, description="Default: the template's model.")
    count: int | None = Field(default=None, ge=1, le=1_000_000, description="Items, for the cost estimate.")


class RenderedPrompts(BaseModel):
    system: str
    user: str


class TokenEstimate(BaseModel):
    prompt_tokens: int
    max_completion_tokens: int
    method: Literal["chars/4"]


class PreviewPublic(BaseModel):
    template_id: str | None
    version: int | None
    index: int
    task_index: int
    task: dict[str, Any] | None
    rendered: RenderedPrompts
    provider: Literal["openrouter", "ollama"]
    model: ModelSpec
    request_body: dict[str, Any] = Field(description="Exactly what would be sent to the provider.")
    token_estimate: TokenEstimate
    cost_estimate: dict[str, Any] | None = Field(
        description="USD range per item and in total (count × item) from the catalog price; null without one."
    )
    notes: list[str]


class ExamplePublic(BaseModel):
    id: str
    name: str
    description: str
    category: str | None
    tags: list[str]
    output_format: Literal["json", "text"]
    document: TemplateCreate


class ExamplesPublic(BaseModel):
    items: list[ExamplePublic]
    total: int


class ImportOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    visibility: Visibility | None = None


class LlmDataGenImportPublic(BaseModel):
    template: TemplatePublic
    notes: list[str] = Field(description="What the mapping could not carry over, or changed.")


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

router = APIRouter(prefix="/templates", tags=["templates"], responses=_COMMON)


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
    request: Request,
    ctx: Context,
    _user: CurrentUser,
    category: Annotated[str | None, Query(max_length=100)] = None,
    tag: Annotated[str | None, Query(max_length=50)] = None,
    q: Annotated[str | None, Query(max_length=200, description="Search in name and description.")] = None,
    visibility: Visibility | None = None,
    owner: Annotated[Literal["me"] | None, Query(description="`me`: only my own templates.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> Response:
    return await _forward(ctx, request, "/templates")


@router.get("/examples", response_model=ExamplesPublic, summary="Example templates that can be imported")
async def list_examples(request: Request, ctx: Context, _user: CurrentUser) -> Response:
    return await _forward(ctx, request, "/templates/examples")


@router.post(
    "/examples/{example_id}/import",
    status_code=201,
    response_model=TemplatePublic,
    summary="Copy an example into my templates",
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
        dict[str, Any], Body(description="A template document; any shape, problems are reported.")
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
    response_model=LlmDataGenImportPublic,
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
    config: Annotated[dict[str, Any], Body(description="The llm-data-gen config JSON, unchanged.")],
    name: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Override meta.name.")
    ] = None,
    visibility: Visibility = "private",
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
    expected_version: Annotated[
        int | None, Query(ge=1, description="409 unless this is still the current version.")
    ] = None,
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
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
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
    from_: Annotated[int, Query(alias="from", ge=1)],
    to: Annotated[int | None, Query(ge=1, description="Default: the current version.")] = None,
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
