"""Events: facts that happened, published for any interested system."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmts_common.contracts import topics
from llmts_common.contracts.base import Message
from llmts_common.contracts.common_models import ModelRef, ModelUsed, Usage


class _JobEvent(Message):
    TOPIC: ClassVar[str] = topics.GENERATION_EVENTS
    KEY_FIELD: ClassVar[str] = "job_id"

    job_id: str
    user_id: str


class GenerationStarted(_JobEvent):
    TYPE: ClassVar[str] = "llmts.generation.started"

    requested: int
    model: ModelRef
    template_id: str
    template_version: int
    started_at: datetime
    template_name: str | None = Field(
        default=None, description="Added in v1: name of the template version used."
    )
    output_format: Literal["json", "text"] | None = Field(
        default=None, description="json items or free text."
    )
    item_schema: dict[str, Any] | None = Field(
        default=None,
        description="JSON Schema of one item as the template declares it (json templates with a schema); "
        "whether items were checked against it says item_schema_enforced.",
    )
    item_schema_enforced: bool | None = Field(
        default=None,
        description="Added in v1: true when every item was validated against item_schema (validation mode "
        "strict), false when it is the template's declared shape only (custom / none modes); null when there "
        "is no schema, or from producers older than this field (which sent item_schema only when enforced).",
    )


class ItemGenerated(_JobEvent):
    TYPE: ClassVar[str] = "llmts.generation.item_generated"

    index: int = Field(ge=0, description="Position of the item in the job's result (0-based, dense).")
    data: Any = Field(
        description="The validated item (object for json templates, string for text templates)."
    )
    attempts: int = Field(ge=1)
    provenance: dict[str, Any] | None = Field(
        default=None,
        description="Added in v1: how the item was made — {task_index, dataset_id, seed_row, sampled, model, "
        "provider, attempts, judge}: the seed dataset row number, the sampled variables' values, the judge's scores.",
    )
    usage: Usage
    content_hash: str
    model: ModelUsed | None = Field(
        default=None,
        description="The model that produced the item (differs from the job's after a fallback).",
    )
    inputs: dict[str, Any] | None = Field(
        default=None,
        description="What the item was generated from: {target, task, task_index, row, variables?} — the wanted "
        "item's number (0..N-1), the task's number, the item's number within the task, the task row and the "
        "request's variables.",
    )


class ItemRejected(_JobEvent):
    TYPE: ClassVar[str] = "llmts.generation.item_rejected"

    slot: int = Field(ge=0, description="The generation slot that gave up after its attempts.")
    reason: Literal["invalid", "duplicate", "provider_error", "cancelled"]
    errors: list[dict[str, Any]] = Field(default_factory=list)
    last_output: str | None = None
    attempts: int = Field(ge=0)
    usage: Usage = Field(default_factory=Usage)
    inputs: dict[str, Any] | None = Field(
        default=None,
        description="What the item was generated from: {target, task, task_index, row, variables?} — the wanted "
        "item's number (0..N-1), the task's number, the item's number within the task, the task row and the "
        "request's variables.",
    )


class ProviderConcurrency(BaseModel):
    """Calls at once to one provider, in the generator process that runs the job (shared by all its jobs)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    current: int = Field(ge=1, description="Calls allowed at once now (the adaptive limit).", examples=[1])
    ceiling: int = Field(ge=1, description="The configured most (PROVIDER_CONCURRENCY).", examples=[4])
    in_flight: int = Field(default=0, ge=0, description="Calls in flight to it now, all jobs of the process.")
    adaptive: bool = Field(default=True, description="False: the ceiling is a fixed limit.")


class BatchProgress(BaseModel):
    """Where a batch-mode job's provider batches are."""

    status: str = Field(description="The provider's status of the latest batch (validating, in_progress, …).")
    batches: int = Field(ge=0, description="Batches submitted so far.")
    outstanding: int = Field(ge=0, description="Batches not finished yet.")
    lines_total: int = Field(ge=0, description="Lines of the outstanding batches.")
    lines_done: int = Field(ge=0, description="Of these, lines the provider has answered (or failed).")


class GenerationProgress(_JobEvent):
    TYPE: ClassVar[str] = "llmts.generation.progress"

    requested: int
    succeeded: int
    rejected: int
    in_flight: int
    attempts: int
    usage: Usage
    projected_cost_usd: float | None = None
    eta_seconds: float | None = None
    concurrency: dict[str, ProviderConcurrency] = Field(
        default_factory=dict,
        description="Added in v1: per provider the job calls now, the calls allowed at once and the ceiling.",
        examples=[{"ollama": {"current": 1, "ceiling": 4, "in_flight": 1, "adaptive": True}}],
    )
    cache_hits: int = Field(default=0, ge=0, description="Item attempts answered from the response cache.")
    cache_misses: int = Field(
        default=0, ge=0, description="Item attempts looked up and not found (then called)."
    )
    batch: BatchProgress | None = Field(
        default=None, description="Added in v1: a batch-mode job's provider batches (None for sync jobs)."
    )


class _JobEnd(_JobEvent):
    """What every terminal event of a job says about its round (a finished job may run again: extend, resume,
    retry-rejected): the counts and usage of the event are the job's totals, these the round's own."""

    round: int = Field(default=1, ge=1, description="1, then +1 per extend / resume / retry-rejected.")
    round_succeeded: int | None = Field(default=None, description="Items accepted in this round (round > 1).")
    round_cost_usd: float | None = Field(default=None, description="What this round cost (round > 1).")


class GenerationCompleted(_JobEnd):
    TYPE: ClassVar[str] = "llmts.generation.completed"

    status: Literal["completed", "completed_with_errors", "stopped"]
    requested: int
    succeeded: int
    rejected: int
    attempts: int
    usage: Usage
    duration_seconds: float
    stop_reason: str | None = Field(default=None, description="Why fewer than requested, when so.")
    diversity: dict[str, Any] | None = Field(
        default=None,
        description="Added in v1: the job's diversity report over its accepted items — {items, distinct_1, "
        "distinct_2, near_duplicate_rate, categories: {column: {values: {value: {count, share, target}}, "
        "max_dev_pp}}} (the generator's domain/diversity.py).",
    )


class GenerationFailed(_JobEnd):
    TYPE: ClassVar[str] = "llmts.generation.failed"

    code: str = Field(examples=["insufficient_credits"])
    reason: str
    succeeded: int = 0
    rejected: int = 0
    attempts: int = 0
    usage: Usage = Field(default_factory=Usage)


class GenerationCancelled(_JobEnd):
    TYPE: ClassVar[str] = "llmts.generation.cancelled"

    succeeded: int = 0
    rejected: int = 0
    attempts: int = 0
    usage: Usage = Field(default_factory=Usage)


class ExportReady(Message):
    TYPE: ClassVar[str] = "llmts.export.ready"
    TOPIC: ClassVar[str] = topics.EXPORT_EVENTS
    KEY_FIELD: ClassVar[str] = "export_id"

    export_id: str
    job_id: str
    user_id: str
    format: str
    bytes: int = Field(ge=0)
    sha256: str
    items: int = Field(ge=0)
    download_path: str = Field(
        examples=["/exports/abc/download"],
        description="The REST route of the file below the gateway (needs the owner's access token).",
    )
    download_url: str | None = Field(
        default=None,
        description="Added in v1: an absolute, signed link to the file that needs no token, valid until "
        "download_expires_at (then 403 link_expired: fetch the export through the REST API). Null when the "
        "exporter has no link key.",
        examples=["https://llmts.example.com/downloads/abc?expires=1767225600&signature=9f2c…"],
    )
    download_expires_at: datetime | None = Field(
        default=None, description="Added in v1: when download_url stops working."
    )


class ExportFailed(Message):
    TYPE: ClassVar[str] = "llmts.export.failed"
    TOPIC: ClassVar[str] = topics.EXPORT_EVENTS
    KEY_FIELD: ClassVar[str] = "export_id"

    export_id: str
    job_id: str
    user_id: str
    format: str
    reason: str


class _TemplateEvent(Message):
    TOPIC: ClassVar[str] = topics.TEMPLATE_EVENTS
    KEY_FIELD: ClassVar[str] = "template_id"

    template_id: str
    owner_id: str
    version: int
    name: str
    visibility: Literal["private", "public"]


class TemplateCreated(_TemplateEvent):
    TYPE: ClassVar[str] = "llmts.template.created"


class TemplateUpdated(_TemplateEvent):
    TYPE: ClassVar[str] = "llmts.template.updated"


class TemplateDeleted(_TemplateEvent):
    TYPE: ClassVar[str] = "llmts.template.deleted"


class ModelCatalogUpdated(Message):
    TYPE: ClassVar[str] = "llmts.catalog.updated"
    TOPIC: ClassVar[str] = topics.CATALOG_EVENTS
    KEY_FIELD: ClassVar[str] = "provider"

    provider: str
    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    changed: list[str] = Field(default_factory=list)
    total: int = 0
    synced_at: datetime


class UserRegistered(Message):
    TYPE: ClassVar[str] = "llmts.auth.user_registered"
    TOPIC: ClassVar[str] = topics.AUTH_EVENTS
    KEY_FIELD: ClassVar[str] = "user_id"

    user_id: str
    email: str
    name: str | None = None
    method: Literal["password", "google", "github"] = "password"
    registered_at: datetime


class UserDisabled(Message):
    """An admin disabled the account: its refresh tokens are revoked; its access tokens must be refused now."""

    TYPE: ClassVar[str] = "llmts.auth.user_disabled"
    TOPIC: ClassVar[str] = topics.AUTH_EVENTS
    KEY_FIELD: ClassVar[str] = "user_id"

    user_id: str
    disabled_at: datetime
    by: str = Field(description="The admin's user id.")


class UserEnabled(Message):
    """An admin enabled a disabled account again: its new tokens are honoured."""

    TYPE: ClassVar[str] = "llmts.auth.user_enabled"
    TOPIC: ClassVar[str] = topics.AUTH_EVENTS
    KEY_FIELD: ClassVar[str] = "user_id"

    user_id: str
    enabled_at: datetime
    by: str = Field(description="The admin's user id.")


class UserDeleted(Message):
    """The account was erased (by its owner or an admin): every service forgets the user's data."""

    TYPE: ClassVar[str] = "llmts.auth.user_deleted"
    TOPIC: ClassVar[str] = topics.AUTH_EVENTS
    KEY_FIELD: ClassVar[str] = "user_id"

    user_id: str
    deleted_at: datetime
    by: str = Field(description="`self`, or the id of the admin who deleted the account.", examples=["self"])
