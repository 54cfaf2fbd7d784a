"""Generation jobs, batches and history: request bodies, query parameters and answers.

Used by the gateway's ``/generate*`` and ``/history*`` routes and by the generator's own routes behind it, so both
OpenAPI documents describe the same shapes. Answers allow extra fields (``extra="allow"``): a newer generator may
add fields without breaking an older gateway or client.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmts_api import examples as ex
from llmts_api.catalog import ProviderName
from llmts_api.costs import JobCostsPublic
from llmts_api.datasets import DatasetSeed
from llmts_api.items import ItemInputsPublic, ItemProvenancePublic
from llmts_api.items import ResultQuery as ResultQuery
from llmts_api.job_parts import ActiveModelPublic as ActiveModelPublic
from llmts_api.job_parts import ConcurrencyPublic as ConcurrencyPublic
from llmts_api.job_parts import Counts as Counts
from llmts_api.job_parts import JobModelPublic as JobModelPublic
from llmts_api.job_parts import JobTemplatePublic as JobTemplatePublic
from llmts_api.job_parts import JobTimings as JobTimings
from llmts_api.job_parts import ModelRefPublic as ModelRefPublic
from llmts_api.job_parts import UsagePublic as UsagePublic
from llmts_api.paging import MAX_OFFSET
from llmts_api.rounds import ExtendRequest as ExtendRequest
from llmts_api.rounds import ResumeRequest as ResumeRequest

JobStatus = Literal[
    "queued", "running", "completed", "completed_with_errors", "stopped", "failed", "cancelled"
]
MAX_FALLBACK_MODELS = 5
TERMINAL_STATUSES: frozenset[str] = frozenset(
    {"completed", "completed_with_errors", "stopped", "failed", "cancelled"}
)


# ------------------------------------------------------------------------------------------------ requests
class FallbackChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: ProviderName | None = Field(default=None, examples=["openrouter"])
    id: str = Field(min_length=1, max_length=300, examples=["openai/gpt-4o-mini"])
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=200_000)


class ModelChoice(FallbackChoice):
    fallback: list[FallbackChoice] = Field(
        default_factory=list,
        max_length=MAX_FALLBACK_MODELS,
        description="Models to switch to, in order, when the one before is unavailable, unknown to its provider, "
        "out of credits or failing (open breaker): the remaining items go to the next model. Each must be in "
        "the catalog.",
    )


class GenerationCreate(BaseModel):
    """A generation job. Without ``count`` the tasks (request's, else template's) define the items: a task
    with ``count: k`` asks for k items."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [ex.GENERATION_CREATE]})

    template_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    count: int | None = Field(default=None, ge=1, description="Valid items wanted (≤ the configured max).")
    tasks: list[dict[str, Any]] | None = Field(
        default=None, max_length=10_000, description="Per-task variables (overrides the template's tasks)."
    )
    variables: dict[str, Any] = Field(default_factory=dict, description="Variables for every item.")
    model: ModelChoice | None = Field(
        default=None,
        description='Overrides the template\'s model: an object, or a model id string (shorthand for {"id": …}), '
        "the same in /generate, /generate/preview and /templates/preview. temperature and max_tokens left out "
        "are the template's.",
        examples=["openai/gpt-4o-mini"],
    )
    validation_mode: Literal["strict", "custom", "none"] | None = Field(
        default=None, description="Overrides the template's validation mode."
    )
    concurrency: int = Field(default=8, ge=1, le=256, description="Provider calls in flight for this job.")
    max_attempts_per_item: int = Field(
        default=3,
        ge=1,
        le=20,
        description="First try + repair attempts; of each stage, for a multi-stage template (an item whose stage "
        "spends them is rejected and regenerated).",
    )
    max_cost_usd: float | None = Field(default=None, gt=0, description="Stop spending beyond this.")
    dedup: bool = Field(
        default=True,
        description="Reject and regenerate exact duplicates (of the top-level output, for a multi-stage template).",
    )
    dataset: DatasetSeed | None = Field(
        default=None,
        description="The job's seed dataset (one of yours): each item gets one row of it as variables. Overrides "
        "the template's `seed` (a public template has none: give it here). A dataset deleted or not yours fails the "
        "job with `dataset_not_found`.",
    )
    dry_run: bool = Field(default=False, description="Preview only: rendered prompts + estimate, no job.")
    cache: Literal["use", "refresh", "off"] = Field(
        default="use",
        description="Response cache (yours only): use = an identical request answered before is served from the "
        "cache (no call, cost 0; the answer is validated with the job's rules); refresh = call and overwrite; "
        "off = neither read nor write.",
    )
    seed: int | None = Field(
        default=None,
        ge=0,
        le=2**31 - 1,
        description="Job seed: fixes each item's seed (sent to providers that take one) and so the cache keys. "
        "Default: random, shown on the job; pass it again to re-run the job from the cache.",
    )
    mode: Literal["sync", "batch"] = Field(
        default="sync",
        description="sync = one provider call per item attempt; batch = the items go to the provider's Batch API "
        "as lines: about half the price, results within the provider's 24 h window, exactly `count` items all the "
        "same. Only models of the openai-compatible provider (422 `batch_unsupported` otherwise); the response "
        "cache is not used and fallback models are not switched to.",
    )
    batch_fallback: Literal["batch", "sync"] = Field(
        default="batch",
        description="Batch jobs: lines to repair or top up after the first batch (invalid, rejected or expired) "
        "go into a further batch (batch), or are called at once at the sync price (sync).",
    )

    @field_validator("model", mode="before")
    @classmethod
    def _model_id_shorthand(cls, value: Any) -> Any:
        return {"id": value} if isinstance(value, str) else value


class BatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [ex.BATCH_CREATE]})
    jobs: list[GenerationCreate] = Field(min_length=1, max_length=100)


class GenerationPreviewRequest(BaseModel):
    """A would-be job (the gateway fills template snapshot, model and options) and the model's prices: the body
    of the generator's ``POST /preview``."""

    request: dict[str, Any] = Field(description="A GenerationRequested body (job_id may be a placeholder).")
    items: int = Field(default=3, ge=1, le=20, description="How many first items to render.")
    pricing: dict[str, Any] | None = Field(
        default=None, description="USD per 1M tokens: {prompt, completion} (catalog format)."
    )
    max_completion_tokens: int | None = Field(
        default=None,
        ge=1,
        description="The catalog's most completion tokens for the model: the estimate's guess without max_tokens "
        "(llmts_providers.preview.completion_guess, as /templates/preview).",
    )


class HistoryQuery(BaseModel):
    """Query parameters of ``GET /history``: filters (all optional, combined with AND) and the page."""

    model_config = ConfigDict(populate_by_name=True)

    status: JobStatus | None = None
    template_id: str | None = Field(default=None, max_length=64)
    model: str | None = Field(
        default=None,
        max_length=300,
        description="A part of the model id, any case: 'llama' finds meta-llama/llama-3.3-70b-instruct:free.",
    )
    from_: datetime | None = Field(default=None, alias="from", description="Created at or after (ISO 8601).")
    to: datetime | None = Field(default=None, description="Created at or before (ISO 8601).")
    q: str | None = Field(default=None, max_length=100, description="Text in template name, job id or model.")
    limit: int = Field(default=20, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)

    def upstream_params(self) -> dict[str, Any]:
        """The set parameters as a query string mapping (datetimes in ISO 8601, ``from`` under its name)."""
        params: dict[str, Any] = {"limit": self.limit, "offset": self.offset}
        for key in ("status", "template_id", "model", "q"):
            value = getattr(self, key)
            if value is not None:
                params[key] = value
        if self.from_ is not None:
            params["from"] = self.from_.isoformat()
        if self.to is not None:
            params["to"] = self.to.isoformat()
        return params


# ------------------------------------------------------------------------------------------------ answers
class JobLinks(BaseModel):
    self: str
    events: str
    websocket: str
    result: str


class GenerationAccepted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.GENERATION_ACCEPTED]})
    job_id: str
    status: Literal["queued"] = "queued"
    links: JobLinks


class ReopenAccepted(GenerationAccepted):
    """A new round of a finished job was accepted (202): the job runs again under the same id. Until the
    generator takes the command, ``GET /generate/{id}`` still shows the previous round: wait for ``round``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "job_id": ex.JOB_ID,
                    "status": "queued",
                    "links": ex.JOB_LINKS,
                    "kind": "extend",
                    "round": 2,
                    "items": 500,
                }
            ]
        }
    )

    kind: Literal["extend", "resume", "retry_rejected"]
    round: int = Field(
        description="The number of the round that will run (the job's ``round`` once it starts)."
    )
    items: int = Field(description="Items the round asks for (extend: count; otherwise the missing ones).")


class BatchAccepted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.BATCH_ACCEPTED]})
    jobs: list[GenerationAccepted]


class CancelAccepted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.CANCEL_ACCEPTED]})
    job_id: str
    status: Literal["cancelling"] = "cancelling"


class ProgressPublic(BaseModel):
    """How far a job is: valid items over requested, and the time left at the rate observed so far."""

    percent: float | None = Field(
        description="succeeded / requested × 100 (one decimal); null when the count is not known yet.",
        examples=[42.5],
    )
    eta_seconds: float | None = Field(
        description="Seconds left at the observed rate of valid items; 0 once the job ended; null while no item "
        "is valid yet (no rate to go by).",
        examples=[12.3],
    )


class JobPublic(BaseModel):
    """Status of a job (``GET /generate/{id}``). ``status``: queued, running, then one of completed (all items),
    completed_with_errors (some items; attempts failed or the attempt budget ran out), stopped (some items; the
    job's ``max_cost_usd`` was reached), failed (no valid item, or a fatal error: see ``error``), cancelled."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [ex.JOB]})
    job_id: str
    status: JobStatus
    template: JobTemplatePublic | None = None
    model: JobModelPublic | None = None
    requested: int | None = None
    counts: Counts
    usage: UsagePublic
    stop_reason: str | None = Field(
        default=None,
        description="Why the job ended early: attempt_budget_exhausted, max_cost_reached, error_rate, cancelled, "
        "fatal_error (null when it made every item).",
    )
    progress: ProgressPublic | None = Field(
        default=None, description="Percent done and estimated seconds left (computed from counts and rate)."
    )
    error: dict[str, Any] | None = Field(default=None, description="{code, reason} of a failed job.")
    timings: JobTimings = Field(default_factory=JobTimings)
    model_active: ActiveModelPublic | None = Field(
        default=None,
        description="{provider, id, position} of the model in use after a move along the fallback chain "
        "(null while the job is on its first model).",
    )
    model_switches: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Moves along the fallback chain: {from, to, reason, detail, skipped, at}; reason is one of "
        "unreachable, unavailable, model_not_found, insufficient_credits, auth_failed, breaker_open.",
    )
    concurrency: dict[str, ConcurrencyPublic] | None = Field(
        default=None,
        description="While the job runs in the answering generator process: per provider it calls now, the calls "
        "allowed at once (learned below the ceiling) and the ceiling; null otherwise.",
        examples=[{"ollama": {"current": 1, "ceiling": 4, "in_flight": 1, "adaptive": True}}],
    )
    seed: int | None = Field(default=None, description="The job seed (given, or picked at random).")
    cache: str | None = Field(default=None, description="The job's cache mode: use, refresh or off.")
    mode: str = Field(
        default="sync", description="sync, or batch: the job runs through the provider's Batch API."
    )
    batches: dict[str, Any] | None = Field(
        default=None,
        description="Batch mode: the provider batches {submitted, outstanding (not read yet), lines, ids}; null "
        "for sync jobs and before the first batch.",
    )
    saved_cost_usd: float = Field(
        default=0.0, description="What the answers served from the cache cost when they were first called."
    )
    round: int = Field(default=1, description="1, then +1 per extend / resume / retry-rejected of the job.")
    judge_usage: dict[str, Any] | None = Field(
        default=None,
        description="Jobs with an LLM judge: the judge's {calls, prompt_tokens, completion_tokens, cost_usd} "
        "(included in usage and counts.attempts); null without a judge.",
    )
    near_duplicates_rejected: int = Field(
        default=0,
        description="Answers turned away as near-duplicates of an accepted item (repaired or rejected; jobs with "
        "validation.near_duplicates).",
    )
    rounds: list[dict[str, Any]] = Field(
        default_factory=list,
        description="The job's later rounds: {round, kind, count, requested, max_cost_usd, at}.",
    )


class ItemPublic(BaseModel):
    model_config = ConfigDict(extra="allow")
    index: int | None = Field(description="0..N-1 (dense, acceptance order); null for rejected items.")
    data: Any = Field(default=None, description="Object for json templates, string for text templates.")
    model: ModelRefPublic | None = Field(default=None, description="The model that produced it.")
    attempts: int
    usage: UsagePublic
    inputs: ItemInputsPublic | None = Field(
        default=None, description="What the item was generated from (null for items of older jobs)."
    )
    provenance: ItemProvenancePublic | None = Field(
        default=None,
        description="How the item was made; on a rejected item what it was made from (null for items of older "
        "jobs).",
    )
    judge: dict[str, Any] | None = Field(
        default=None,
        description="The LLM judge's verdict (jobs with a judge): {scores: {name: number} (null: the judge's answer "
        "could not be read), reason, model: {provider, id}, calls, usage}; on a rejected item (reason judge) why it "
        "was refused.",
        examples=[
            {"scores": {"quality": 4}, "reason": "clear", "model": {"provider": "openrouter", "id": "x"}}
        ],
    )


class ResultPublic(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [ex.RESULT]})
    items: list[ItemPublic]
    total: int
    limit: int | None = Field(default=None, description="The page size asked for (the one list shape).")
    offset: int | None = Field(default=None, description="The page's first position.")


class ItemsPage(BaseModel):
    """A keyset page of accepted items in index order (the generator's internal items endpoint)."""

    job_id: str
    status: JobStatus
    terminal: bool
    succeeded: int
    items: list[ItemPublic]
    next_after: int | None = Field(description="Pass as ``after`` for the next page; null on the last page.")


class RenderedStage(BaseModel):
    """A later stage of a multi-stage template in a preview, rendered with placeholder outputs of the stages before
    it (example values from their schemas: a preview calls no model)."""

    model_config = ConfigDict(extra="allow")
    name: str
    system: str
    user: str
    request_body: dict[str, Any] = Field(
        description="The exact body the provider would receive for this stage."
    )


class RenderedItem(BaseModel):
    model_config = ConfigDict(extra="allow")
    index: int
    system: str
    user: str
    provider: str | None = None
    request_body: dict[str, Any] = Field(description="The exact body the provider would receive.")
    sampled: dict[str, Any] = Field(default_factory=dict, description="The item's sampled values (job seed).")
    seed_row: int | None = Field(default=None, description="The seed dataset row the item gets (0-based).")
    stages: list[RenderedStage] | None = Field(
        default=None,
        description="Every later stage of a multi-stage template, in order (absent without stages).",
    )


class GenerationPreviewPublic(BaseModel):
    """Rendered prompts of the first items, the exact provider request body and a cost range (no job)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [ex.GENERATION_PREVIEW]})
    items: list[RenderedItem]
    count: int
    model: JobModelPublic
    estimate: dict[str, Any] = Field(description="Token counts and a cost range {low, high} (estimates).")


class HistoryTotals(BaseModel):
    jobs: int
    items: int
    rejected: int
    attempts: int
    usage: UsagePublic


class HistoryPublic(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [ex.HISTORY]})
    items: list[JobPublic]
    total: int
    limit: int
    offset: int
    totals: HistoryTotals = Field(description="Sums over every job matching the filters (the user's totals).")


class AttemptsSummary(BaseModel):
    model_config = ConfigDict(extra="allow")
    total: int
    by_outcome: dict[str, dict[str, Any]]
    by_model: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Calls, valid answers, tokens and cost per model, in the order used.",
    )
    by_stage: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Count, tokens and cost of the attempts per stage of a multi-stage template (`main`: the "
        "top-level prompts; every item's stage calls are attempts too).",
    )
    items: list[dict[str, Any]]


class HistoryJobPublic(JobPublic):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.HISTORY_JOB]})
    attempts: AttemptsSummary
    costs: JobCostsPublic | None = None
    diversity: dict[str, Any] | None = Field(
        default=None,
        description="The diversity report of the job's accepted items when its latest round completed "
        "(generator README, issue 18): distinct_1/2, near_duplicate_rate, categories vs their targets.",
    )
