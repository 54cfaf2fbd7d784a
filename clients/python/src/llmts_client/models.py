"""Typed answers of the public API, as the client reads them.

The client's own models (it does not import the server's ``llmts_api``): every model allows extra fields and
every field a newer or older server may leave out has a default, so the client keeps working when the API grows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

T = TypeVar("T")

TERMINAL_STATUSES: frozenset[str] = frozenset(
    {"completed", "completed_with_errors", "stopped", "failed", "cancelled"}
)
"""Job statuses after which nothing changes (``stopped``: the job's ``max_cost_usd`` was reached)."""


class ApiModel(BaseModel):
    """Base of every answer: unknown fields are kept (``model_extra``), never refused."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Page(ApiModel, Generic[T]):
    """One page of a list: ``{items, total, limit, offset}`` (``count`` of older servers is read as total)."""

    items: list[T]
    total: int | None = None
    limit: int | None = None
    offset: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _count_as_total(cls, value: Any) -> Any:
        if isinstance(value, dict) and "total" not in value and "count" in value:
            return {**value, "total": value["count"]}
        return value


class Tokens(ApiModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int | None = None


class User(ApiModel):
    id: str
    email: str
    name: str | None = None
    created_at: datetime | None = None


class Usage(ApiModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


# ------------------------------------------------------------------------------------------------ catalog
class Pricing(ApiModel):
    prompt: float | None = Field(default=None, description="USD per 1M input tokens.")
    completion: float | None = Field(default=None, description="USD per 1M output tokens.")
    request: float | None = None
    web_search: float | None = None


class Model(ApiModel):
    id: str
    provider: str
    name: str | None = None
    context_length: int | None = None
    pricing: Pricing = Field(default_factory=Pricing)
    free: bool = False
    online: bool = False
    structured_output: bool = False
    tools: bool = False
    stale: bool = False


# ------------------------------------------------------------------------------------------------ templates
class TemplateSummary(ApiModel):
    id: str
    name: str
    version: int | None = None
    description: str = ""
    category: str | None = None
    tags: list[str] = Field(default_factory=list)
    visibility: str | None = None
    output_format: str | None = None
    model_id: str | None = None
    updated_at: datetime | None = None


class Template(ApiModel):
    id: str
    name: str
    version: int | None = None
    owner_id: str | None = None
    description: str = ""
    category: str | None = None
    tags: list[str] = Field(default_factory=list)
    output: dict[str, Any] = Field(default_factory=dict)
    prompts: dict[str, Any] = Field(default_factory=dict)
    json_schema: dict[str, Any] | None = None
    tasks: list[dict[str, Any]] = Field(default_factory=list)
    variables: dict[str, Any] = Field(default_factory=dict)
    model: dict[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Imported(ApiModel):
    """What an import gives: the new template and what the mapping could not carry over."""

    template: Template
    notes: list[str] = Field(default_factory=list)


class Issue(ApiModel):
    path: str | None = None
    message: str
    line: int | None = None
    column: int | None = None
    kind: str | None = None


class ValidationReport(ApiModel):
    valid: bool
    errors: list[Issue] = Field(default_factory=list)
    warnings: list[Issue] = Field(default_factory=list)


# ------------------------------------------------------------------------------------------------ generation
class Counts(ApiModel):
    requested: int | None = None
    succeeded: int = 0
    rejected: int = 0
    attempts: int = 0
    in_flight: int | None = None


class JobAccepted(ApiModel):
    job_id: str
    status: str = "queued"
    links: dict[str, str] = Field(default_factory=dict)


class Progress(ApiModel):
    percent: float | None = Field(default=None, description="succeeded / requested × 100.")
    eta_seconds: float | None = Field(default=None, description="Seconds left at the observed rate.")


class Job(ApiModel):
    """Status of a job (``progress``: percent done and seconds left, when the server computes them)."""

    job_id: str
    status: str
    template: dict[str, Any] | None = None
    model: dict[str, Any] | None = None
    requested: int | None = None
    counts: Counts = Field(default_factory=Counts)
    usage: Usage = Field(default_factory=Usage)
    stop_reason: str | None = None
    error: dict[str, Any] | None = None
    progress: Progress | None = None
    created_at: datetime | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class Item(ApiModel):
    index: int | None = None
    data: Any = None
    attempts: int = 0
    usage: Usage = Field(default_factory=Usage)
    inputs: Any = None


class Result(ApiModel):
    items: list[Item]
    total: int | None = None
    status: str | None = None


class Event(ApiModel):
    """A live event of a job: ``type`` is ``snapshot`` (``data`` is the job status), then ``started``,
    ``item_generated``, ``item_rejected``, ``progress`` … and a terminal one (``completed``, ``failed``,
    ``cancelled``). The type is given without its namespace (``generation.completed`` → ``completed``)."""

    type: str
    id: str | None = None
    time: datetime | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        if self.type == "snapshot":
            return str(self.data.get("status")) in TERMINAL_STATUSES
        return self.type in {"completed", "failed", "cancelled", "completed_with_errors"}


# ------------------------------------------------------------------------------------------------ exports
class Export(ApiModel):
    export_id: str
    job_id: str | None = None
    format: str | None = None
    status: str
    reason: str | None = None
    bytes: int | None = None
    items: int | None = None
    filename: str | None = None
    content_type: str | None = None
    created_at: datetime | None = None
    links: dict[str, str | None] = Field(default_factory=dict)
