"""REST models of model comparison (issue 18 #6): ``POST /generate/compare``, ``GET|DELETE /generate/compare/{id}``.

A comparison runs the same template on 2–5 models: one ordinary job per model (``count = sample``, the same job
seed so every model gets the same items' variables); the report puts the jobs side by side and names a winner.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llmts_api.generation import ModelChoice, UsagePublic

MAX_MODELS = 5
MAX_SAMPLE = 50
MAX_REPORT_ITEMS = 50
WINNER_RULE = (
    "once every job has ended, among the completed jobs: highest first-try validity, then lowest cost per valid "
    "item, then lowest p50 latency, then the order of `models`"
)

COMPARISON_ID = "cmp_5b1d9e07"
_JOBS = ["j_8c1e2f4a", "j_8c1e2f4b"]
COMPARE_CREATE: dict[str, Any] = {
    "template_id": "tpl_reviews",
    "models": ["openai/gpt-4o-mini", {"provider": "openrouter", "id": "anthropic/claude-3.5-haiku"}],
    "sample": 10,
    "variables": {"product": "a kettle"},
}
COMPARE_ACCEPTED: dict[str, Any] = {
    "comparison_id": COMPARISON_ID,
    "status": "running",
    "seed": 917_733_104,
    "jobs": [
        {"model": {"provider": None, "id": "openai/gpt-4o-mini"}, "job_id": _JOBS[0]},
        {"model": {"provider": "openrouter", "id": "anthropic/claude-3.5-haiku"}, "job_id": _JOBS[1]},
    ],
    "links": {"self": f"/generate/compare/{COMPARISON_ID}"},
}
_MODEL_ROW: dict[str, Any] = {
    "model": {"provider": None, "id": "openai/gpt-4o-mini"},
    "job_id": _JOBS[0],
    "status": "completed",
    "requested": 10,
    "succeeded": 10,
    "rejected": 0,
    "items_tried": 10,
    "first_try_validity": 0.9,
    "repairs_per_item": 0.1,
    "cost_usd": 0.00124,
    "cost_per_valid_item_usd": 0.000124,
    "latency_ms": {"p50": 812.0, "p95": 1430.5, "calls": 11},
    "usage": {"prompt_tokens": 4120, "completion_tokens": 960, "cost_usd": 0.00124},
    "judge_score": None,
    "items": [{"index": 0, "data": {"title": "Solid kettle", "rating": 4}, "attempts": 1}],
    "items_total": 10,
}
COMPARE_REPORT: dict[str, Any] = {
    "comparison_id": COMPARISON_ID,
    "status": "completed",
    "template_id": "tpl_reviews",
    "sample": 10,
    "seed": 917_733_104,
    "created_at": "2026-12-06T21:10:00Z",
    "models": [_MODEL_ROW],
    "winner": {
        "model": {"provider": None, "id": "openai/gpt-4o-mini"},
        "job_id": _JOBS[0],
        "rule": WINNER_RULE,
    },
    "start": {
        "template_id": "tpl_reviews",
        "model": {"provider": None, "id": "openai/gpt-4o-mini"},
        "variables": {"product": "a kettle"},
    },
}
COMPARE_CANCELLED: dict[str, Any] = {
    "comparison_id": COMPARISON_ID,
    "status": "cancelling",
    "cancelled": [_JOBS[1]],
}


class CompareCreate(BaseModel):
    """Compare models on the same items: one job per model, ``sample`` items each, the same seed."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [COMPARE_CREATE]})

    template_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    models: list[ModelChoice] = Field(
        min_length=2,
        max_length=MAX_MODELS,
        description="2–5 distinct models: objects or model id strings (as `model` in /generate).",
    )
    sample: int = Field(
        ge=1, le=MAX_SAMPLE, description="Valid items wanted from each model (the job's count)."
    )
    variables: dict[str, Any] = Field(default_factory=dict, description="Variables for every item.")
    validation_mode: Literal["strict", "custom", "none"] | None = Field(
        default=None, description="Overrides the template's validation mode (every job the same)."
    )
    max_attempts_per_item: int = Field(default=3, ge=1, le=20, description="First try + repair attempts.")
    concurrency: int = Field(default=8, ge=1, le=256, description="Provider calls in flight per job.")
    max_cost_usd: float | None = Field(default=None, gt=0, description="Spending cap of each job.")
    dedup: bool = Field(default=True, description="Reject and regenerate exact duplicates.")
    cache: Literal["use", "refresh", "off"] = Field(
        default="off",
        description="Response cache of the jobs; off by default: a cached answer measures no model (latency 0).",
    )
    seed: int | None = Field(
        default=None,
        ge=0,
        le=2**31 - 1,
        description="The seed of every job (the same items' variables for every model); default: random.",
    )

    @field_validator("models", mode="before")
    @classmethod
    def _model_id_shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"id": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _distinct_models(self) -> CompareCreate:
        seen = set()
        for model in self.models:
            key = (model.provider, model.id)
            if key in seen:
                raise ValueError(f"models: {model.id!r} is given twice")
            seen.add(key)
        return self


class CompareModelRef(BaseModel):
    provider: str | None = None
    id: str


class CompareJob(BaseModel):
    model: CompareModelRef
    job_id: str


class CompareLinks(BaseModel):
    self: str


class CompareAccepted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [COMPARE_ACCEPTED]})

    comparison_id: str
    status: Literal["running"] = "running"
    seed: int = Field(description="The seed every job runs with.")
    jobs: list[CompareJob]
    links: CompareLinks


class CompareQuery(BaseModel):
    """Query parameters of ``GET /generate/compare/{id}``."""

    items: int = Field(
        default=10, ge=0, le=MAX_REPORT_ITEMS, description="Accepted items shown per model (first by index)."
    )


class LatencyPublic(BaseModel):
    p50: float | None = Field(description="Median latency of the provider calls (ms); null before any call.")
    p95: float | None = Field(description="95th percentile (nearest rank, ms).")
    calls: int = Field(description="Calls measured.")


class CompareModelReport(BaseModel):
    model: CompareModelRef
    job_id: str
    status: str = Field(description="The job's status (queued, running, completed, failed, cancelled …).")
    requested: int | None = None
    succeeded: int = 0
    rejected: int = 0
    items_tried: int = Field(
        description="Items with a concluded first attempt (accepted, rejected or repaired)."
    )
    first_try_validity: float | None = Field(
        description="Share of the items tried valid on their first attempt."
    )
    repairs_per_item: float | None = Field(description="Item attempts after the first, per item tried.")
    cost_usd: float
    cost_per_valid_item_usd: float | None = Field(description="The job's cost / its valid items.")
    latency_ms: LatencyPublic
    usage: UsagePublic
    judge_score: float | None = Field(
        description="Mean judge score of the items that carry judge scores (mean of each item's scores); null "
        "when none does."
    )
    items: list[dict[str, Any]] = Field(
        description="The first `items` accepted items (index, data, attempts)."
    )
    items_total: int = Field(description="Accepted items of the job.")
    error: dict[str, Any] | None = Field(default=None, description="Why the job's figures could not be read.")


class CompareWinner(BaseModel):
    model: CompareModelRef
    job_id: str
    rule: str = Field(description="The rule that chose it.")


class CompareReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [COMPARE_REPORT]})

    comparison_id: str
    status: Literal["running", "completed", "incomplete"] = Field(
        description="running while a job runs; completed when every job completed; incomplete when every job "
        "ended and one did not complete."
    )
    template_id: str
    sample: int
    seed: int
    created_at: datetime
    models: list[CompareModelReport]
    winner: CompareWinner | None = Field(description="Null until every job has ended (see the rule).")
    start: dict[str, Any] | None = Field(
        description="The exact POST /generate body that runs the full job on the winner (add `count`)."
    )


class CompareCancelled(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [COMPARE_CANCELLED]})

    comparison_id: str
    status: Literal["cancelling"] = "cancelling"
    cancelled: list[str] = Field(description="The jobs asked to cancel (those still running).")
