"""Templates: the template document (v1), its versions and diff, validation, preview, examples and imports.

``TemplateCreate`` is the document as ``POST /templates`` and ``PUT /templates/{id}`` accept it (a PUT replaces the
whole document, so there is no separate update model); the templates service's domain document extends it, so the
service, the gateway and the stored documents validate with the same rules. Unknown top-level keys are refused (a
typo such as ``promts`` must not be stored silently) and ``schema`` is required when the output format is ``json``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmts_api import examples as ex
from llmts_api import template_examples as tex
from llmts_api.catalog import ProviderName
from llmts_api.paging import MAX_OFFSET
from llmts_api.template_document import MAX_PROMPT_CHARS as MAX_PROMPT_CHARS
from llmts_api.template_document import MAX_RULES as MAX_RULES
from llmts_api.template_document import MAX_STAGES, DatasetSeed, JudgeSpec, StageSpec
from llmts_api.template_document import FallbackSpec as FallbackSpec
from llmts_api.template_document import ModelSpec as ModelSpec
from llmts_api.template_document import OutputFormat as OutputFormat
from llmts_api.template_document import OutputSpec as OutputSpec
from llmts_api.template_document import PromptsSpec as PromptsSpec
from llmts_api.template_document import ValidationMode as ValidationMode
from llmts_api.template_document import ValidationSpec as ValidationSpec
from llmts_api.template_preview import JudgePreview, PreviewItem
from llmts_api.template_preview import RenderedPrompts as RenderedPrompts

Visibility = Literal["private", "public"]

MAX_NAME_CHARS = 200
MAX_DESCRIPTION_CHARS = 5_000
MAX_TAG_CHARS = 50
MAX_TAGS = 32
MAX_TASKS = 1_000
MAX_PAGE = 100
MAX_PREVIEW_ITEMS = 20
TEMPLATE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
EXAMPLE_ID_PATTERN = r"^[a-z0-9-]{1,64}$"

_EXAMPLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"question": {"type": "string"}, "answer": {"type": "string", "pattern": "^[A-D]$"}},
    "required": ["question", "answer"],
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ----------------------------------------------------------------------------------------------- the document
class TemplateCreate(BaseModel):
    """A template document (v1). Unknown top-level keys are refused; ``schema`` is required for json output."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        serialize_by_alias=True,
        json_schema_extra={
            "examples": [
                {
                    "name": "Quiz questions",
                    "category": "education",
                    "tags": ["quiz"],
                    "prompts": {"user": "Write a quiz question about {{ topic }} with four options A-D."},
                    "schema": _EXAMPLE_SCHEMA,
                    "tasks": [{"topic": "astronomy", "count": 5}],
                    "model": {"id": "openai/gpt-4o-mini", "temperature": 0.7},
                },
                tex.PIPELINE_DOCUMENT,
            ]
        },
    )

    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS, examples=["Quiz questions"])
    description: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)
    category: str | None = Field(default=None, max_length=100, examples=["education"])
    tags: list[str] = Field(
        default_factory=list,
        max_length=MAX_TAGS,
        description=f"Each 1-{MAX_TAG_CHARS} characters.",
        examples=[["quiz"]],
    )
    visibility: Visibility = Field(
        default="private", description="public: readable by all, writable by the owner."
    )
    output: OutputSpec = Field(default_factory=OutputSpec)
    prompts: PromptsSpec
    json_schema: dict[str, Any] | None = Field(
        default=None,
        alias="schema",
        description="JSON Schema (2020-12; draft-07 accepted) of ONE item; required for json output.",
    )
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    variables: dict[str, Any] = Field(
        default_factory=dict,
        description="Defaults for custom variables; a value with a `sampler` key is a sampler (category, "
        "subcategory, uniform, normal, datetime, uuid, person, expression), drawn per item without tokens.",
    )
    tasks: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=MAX_TASKS,
        description="Optional rows of variables, each with a `count` of items (llm-data-gen).",
    )
    model: ModelSpec | None = None
    seed: DatasetSeed | None = Field(
        default=None,
        description="A seed dataset of the owner's: each item gets one row as variables (its columns, or "
        "`columns`, count as declared names). A public template cannot have one (datasets are private).",
    )
    judge: JudgeSpec | None = Field(default=None, description="An LLM judge every item must pass.")
    stages: list[StageSpec] = Field(
        default_factory=list,
        max_length=MAX_STAGES,
        description="Stages after the top-level prompts (stage `main`; json output only): a stage's prompts may "
        "use `{{ main.<field> }}` and `{{ <earlier stage>.<field> }}`; the item is the top-level output with "
        "each stage's output under its name.",
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="Free-form provenance (e.g. what an import came from); never used for rendering.",
    )

    @model_validator(mode="after")
    def _schema_for_json(self) -> TemplateCreate:
        if self.output.format == "json" and not self.json_schema:
            raise ValueError("schema is required when output.format is 'json'")
        for tag in self.tags:
            if not tag or len(tag) > MAX_TAG_CHARS:
                raise ValueError(f"tags must be 1-{MAX_TAG_CHARS} characters")
        return self


class TemplatePublic(TemplateCreate):
    """A stored template: the current document plus its identity and bookkeeping."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [ex.TEMPLATE]})

    id: str
    owner_id: str
    version: int = Field(ge=1, description="Current version; every PUT or rollback adds one.")
    created_at: datetime
    updated_at: datetime


class TemplateReplaceQuery(BaseModel):
    """Optimistic concurrency of ``PUT /templates/{id}``."""

    model_config = ConfigDict(extra="forbid")

    expected_version: int | None = Field(
        default=None, ge=1, description="409 unless this is still the current version.", examples=[3]
    )


MERGE_PATCH_MEDIA_TYPE = "application/merge-patch+json"
_MERGE_PATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "TemplateMergePatch",
    "description": (
        "A JSON merge patch (RFC 7396) of the template document: the keys given replace the current ones "
        "(objects merge key by key, arrays are replaced whole), `null` removes a key (back to its default). "
        "The result must be a valid template; it becomes a new version, exactly as a PUT of it would."
    ),
    "examples": [
        {"name": "Quiz v2", "tags": ["quiz", "math"], "model": {"temperature": 0.3}, "category": None}
    ],
}
MERGE_PATCH_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            MERGE_PATCH_MEDIA_TYPE: {"schema": _MERGE_PATCH_SCHEMA},
            "application/json": {"schema": _MERGE_PATCH_SCHEMA},
        },
    }
}
"""The request body of ``PATCH /templates/{id}`` in OpenAPI (the route reads the raw body itself)."""


class TemplateSummary(BaseModel):
    id: str
    owner_id: str
    version: int
    name: str
    description: str
    category: str | None
    tags: list[str]
    visibility: Visibility
    output_format: OutputFormat
    model_id: str | None = Field(examples=["openai/gpt-4o-mini"])
    created_at: datetime
    updated_at: datetime


class TemplatesPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.TEMPLATES]})
    items: list[TemplateSummary]
    total: int = Field(description="Templates matching the filters, over all pages.")
    limit: int
    offset: int


MAX_TAG_FILTERS = 10
TagFilter = Annotated[str, Field(min_length=1, max_length=MAX_TAG_CHARS)]


class TemplatesQuery(BaseModel):
    """Filters and page of ``GET /templates`` (own templates and public ones, most recently updated first).

    ``category`` and ``tag`` match whole values, case-insensitively; ``tag`` may be repeated
    (``?tag=quiz&tag=math``) and then every tag must match. Unknown parameters answer 422."""

    model_config = ConfigDict(extra="forbid")

    category: str | None = Field(
        default=None, min_length=1, max_length=100, examples=["education"], description="Case-insensitive."
    )
    tag: list[TagFilter] = Field(
        default_factory=list,
        max_length=MAX_TAG_FILTERS,
        examples=[["quiz"]],
        description="Case-insensitive; repeat it to require several tags (all must match).",
    )
    q: str | None = Field(default=None, max_length=200, description="Search in name and description.")
    visibility: Visibility | None = None
    owner: Literal["me"] | None = Field(default=None, description="`me`: only my own templates.")
    limit: int = Field(default=20, ge=1, le=MAX_PAGE)
    offset: int = Field(default=0, ge=0, le=100_000)


class FacetsQuery(BaseModel):
    """Scope of ``GET /templates/categories`` and ``GET /templates/tags`` (default: my templates and public ones)."""

    model_config = ConfigDict(extra="forbid")

    visibility: Visibility | None = None
    owner: Literal["me"] | None = Field(default=None, description="`me`: only my own templates.")


class FacetCount(BaseModel):
    name: str = Field(
        examples=["education"],
        description="The most used spelling (values differing only in case are counted together).",
    )
    count: int = Field(ge=1, description="Templates the caller may see with this value.", examples=[3])


class FacetsPublic(BaseModel):
    """Categories or tags of the templates the caller may see (own and public), most used first."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.FACETS]})
    items: list[FacetCount]
    total: int = Field(description="Distinct values.", examples=[1])


# ------------------------------------------------------------------------------------------------ versions
class VersionSummary(BaseModel):
    version: int
    created_at: datetime
    created_by: str
    note: str | None = Field(default=None, examples=["rollback to 2"])
    name: str


class VersionsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.VERSIONS]})
    template_id: str
    current_version: int
    items: list[VersionSummary] = Field(description="Newest first.")
    total: int
    limit: int
    offset: int


class VersionsQuery(BaseModel):
    """The page of ``GET /templates/{id}/versions``."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


class VersionPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.VERSION]})
    template_id: str
    version: int
    created_at: datetime
    created_by: str
    note: str | None = Field(default=None, examples=["rollback to 2"])
    document: TemplateCreate


class DiffQuery(BaseModel):
    """The two versions ``GET /templates/{id}/diff`` compares."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    from_: int = Field(alias="from", ge=1, description="The older version.")
    to: int | None = Field(default=None, ge=1, description="Default: the current version.")


class Change(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

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
    model_config = ConfigDict(
        populate_by_name=True, serialize_by_alias=True, json_schema_extra={"examples": [ex.TEMPLATE_DIFF]}
    )

    from_version: int
    to_version: int
    changed: bool
    prompts: dict[str, PromptDiff] = Field(description="`system` and `user`.")
    schema_changes: list[Change] = Field(alias="schema")
    rules: RulesDiff
    model: list[Change]
    other: list[Change] = Field(description="name, description, visibility, output, variables, tasks …")


# ---------------------------------------------------------------------------------------- validate, preview
class Issue(BaseModel):
    path: str = Field(examples=["prompts.user"])
    message: str = Field(examples=["unexpected '}'"])
    line: int | None = Field(default=None, description="1-based line in the prompt (prompt issues).")
    column: int | None = Field(
        default=None, description="1-based column on that line, when it can be placed."
    )
    kind: str | None = Field(default=None, examples=["syntax"])


class ValidationReportPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.VALIDATION_REPORT]})
    valid: bool
    errors: list[Issue]
    warnings: list[Issue] = Field(
        description="Undefined variables, unknown placeholders, rule paths missing from the schema …"
    )


class PreviewRequest(_Strict):
    """Exactly one of ``template_id`` (a stored template, optionally a past ``version``) and ``template``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"template_id": "t_3f9a", "variables": {"topic": "tides"}, "count": 100}]
        }
    )

    template_id: str | None = Field(
        default=None, pattern=TEMPLATE_ID_PATTERN, description="A stored template (readable by the caller)."
    )
    version: int | None = Field(default=None, ge=1, description="With template_id: a past version.")
    template: dict[str, Any] | None = Field(default=None, description="An unsaved template document.")
    variables: dict[str, Any] = Field(default_factory=dict, description="Request variables (win over all).")
    index: int = Field(default=0, ge=0, le=10_000_000, description="0-based item index in the job.")
    task: int | dict[str, Any] | None = Field(
        default=None,
        description="A task row (object) or the position of one of the template's tasks; "
        "default: the task the index falls into (tasks run in order, each `count` items).",
    )
    model: str | ModelSpec | None = Field(
        default=None, description="Model id or spec; default: the template's."
    )
    count: int | None = Field(default=None, ge=1, le=1_000_000, description="Items, for the cost estimate.")
    items: int = Field(
        default=1, ge=1, le=MAX_PREVIEW_ITEMS, description="Items `index` .. `index + items - 1` in `items`."
    )
    sample_seed: int = Field(
        default=0,
        ge=0,
        le=2**63 - 1,
        description="The seed samplers are drawn with (a job draws with its own).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> PreviewRequest:
        if (self.template_id is None) == (self.template is None):
            raise ValueError("give exactly one of template_id and template")
        if self.version is not None and self.template_id is None:
            raise ValueError("version needs template_id")
        return self


class TokenEstimate(BaseModel):
    prompt_tokens: int
    max_completion_tokens: int
    method: Literal["chars/4"]


class PreviewPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.PREVIEW, tex.PIPELINE_PREVIEW]})
    template_id: str | None
    version: int | None
    index: int
    task_index: int
    task: dict[str, Any] | None
    rendered: RenderedPrompts
    provider: ProviderName
    model: ModelSpec
    request_body: dict[str, Any] = Field(description="Exactly what would be sent to the provider.")
    token_estimate: TokenEstimate
    cost_estimate: dict[str, Any] | None = Field(
        description="USD range per item and in total (count × item) from the catalog price; null without one."
    )
    notes: list[str]
    sample_seed: int = Field(default=0, description="The seed the sampled values were drawn with.")
    items: list[PreviewItem] = Field(default_factory=list, description="The previewed items, from `index`.")
    judge: JudgePreview | None = None


# ------------------------------------------------------------------------------------------ examples, imports
class ExamplePublic(BaseModel):
    id: str = Field(examples=["quiz"])
    name: str
    description: str
    category: str | None
    tags: list[str]
    output_format: OutputFormat
    document: TemplateCreate


class ExamplesPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.EXAMPLES]})
    items: list[ExamplePublic]
    total: int


class ImportOptions(_Strict):
    """Optional body of ``POST /templates/examples/{id}/import``: override the copy's name and visibility."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.IMPORT_OPTIONS]})

    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_CHARS)
    visibility: Visibility | None = None


class LlmDataGenImportQuery(BaseModel):
    """Overrides for ``POST /templates/import/llm-data-gen``."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None, min_length=1, max_length=MAX_NAME_CHARS, description="Override meta.name."
    )
    visibility: Visibility = "private"


class ImportPublic(BaseModel):
    """What both imports answer (an example, an llm-data-gen config): the new template and notes on it."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.LLM_DATA_GEN_IMPORT]})
    template: TemplatePublic
    notes: list[str] = Field(
        description="llm-data-gen: what the mapping could not carry over, or changed; "
        "example: what to know before running it (its tasks). Often empty."
    )


LlmDataGenImportPublic = ImportPublic
"""The earlier name of :class:`ImportPublic`."""
