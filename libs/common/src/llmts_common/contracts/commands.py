"""Commands: imperative requests for work, consumed by exactly one service."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from llmts_common.contracts import topics
from llmts_common.contracts.base import Message
from llmts_common.contracts.common_models import ModelRef, SeedRef, TemplateSnapshot, ValidationMode

CacheMode = Literal["use", "refresh", "off"]
ReopenKind = Literal["extend", "resume", "retry_rejected"]
JobMode = Literal["sync", "batch"]
BatchFallback = Literal["batch", "sync"]


class GenerationRequested(Message):
    """A user asked for a generation job; the gateway accepted it (202) and the generator runs it."""

    TYPE: ClassVar[str] = "llmts.generation.requested"
    TOPIC: ClassVar[str] = topics.GENERATION_COMMANDS
    KEY_FIELD: ClassVar[str] = "job_id"

    job_id: str = Field(description="The job id returned to the client.", examples=["9f1c…"])
    user_id: str = Field(description="Owner of the job.")
    template: TemplateSnapshot
    model: ModelRef
    count: int = Field(ge=1, description="Number of valid items wanted.")
    tasks: list[dict[str, Any]] = Field(
        default_factory=list, description="Per-task variables (llm-data-gen)."
    )
    variables: dict[str, Any] = Field(default_factory=dict)
    validation_mode: ValidationMode = "strict"
    concurrency: int = Field(default=8, ge=1, le=256)
    max_attempts_per_item: int = Field(default=3, ge=1, le=20)
    max_cost_usd: float | None = Field(default=None, gt=0)
    dedup: bool = True
    dataset: SeedRef | None = Field(
        default=None,
        description="The job's seed dataset (overrides the template's `seed`): each item gets one row of it as "
        "variables. Added in v1.",
    )
    requested_at: datetime
    cache: CacheMode = Field(
        default="use",
        description="Response cache (per user): use = answer from the cache when the same request was answered "
        "before (no call, cost 0), else call and store; refresh = always call, overwrite; off = neither.",
    )
    seed: int | None = Field(
        default=None,
        ge=0,
        le=2**31 - 1,
        description="Job seed: fixes each item's seed (sent to providers that take one) and so the cache keys; "
        "None = the generator picks one from the job id and records it.",
    )
    mode: JobMode = Field(
        default="sync",
        description="sync = one provider call per item attempt; batch = the items go to the provider's Batch API "
        "as lines (about half the price, results within the 24 h window; OpenAI-compatible provider only).",
    )
    batch_fallback: BatchFallback = Field(
        default="batch",
        description="Batch jobs: lines to repair or top up after the first batch (invalid, rejected, expired) go "
        "into a further batch (batch) or are called at once at the sync price (sync).",
    )


class GenerationReopenRequested(Message):
    """Run a finished job again (a new round of the same job, same job id): ``extend`` adds ``count`` items
    (new indexes), ``resume`` runs the missing slots of a cancelled / failed / capped job, ``retry_rejected``
    regenerates the slots left rejected (a job that ended short of N with rejections). Accepted items are kept and
    never paid again."""

    TYPE: ClassVar[str] = "llmts.generation.reopen_requested"
    TOPIC: ClassVar[str] = topics.GENERATION_COMMANDS
    KEY_FIELD: ClassVar[str] = "job_id"

    job_id: str
    user_id: str
    kind: ReopenKind
    count: int = Field(default=0, ge=0, description="extend: items to add (ignored by the other kinds).")
    max_cost_usd: float | None = Field(
        default=None, gt=0, description="Spending cap of this round (None keeps no cap for the round)."
    )
    requested_at: datetime


class GenerationCancelRequested(Message):
    TYPE: ClassVar[str] = "llmts.generation.cancel_requested"
    TOPIC: ClassVar[str] = topics.GENERATION_COMMANDS
    KEY_FIELD: ClassVar[str] = "job_id"

    job_id: str
    user_id: str
    reason: str = "cancelled by user"


class ExportRequested(Message):
    TYPE: ClassVar[str] = "llmts.export.requested"
    TOPIC: ClassVar[str] = topics.EXPORT_COMMANDS
    KEY_FIELD: ClassVar[str] = "export_id"

    export_id: str
    job_id: str
    user_id: str
    format: str = Field(examples=["csv"])
    options: dict[str, Any] = Field(default_factory=dict)
