"""Value objects shared by several contracts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ProviderName = Literal["openrouter", "ollama", "openai-compatible"]
ValidationMode = Literal["strict", "custom", "none"]
OutputFormat = Literal["json", "text"]
JobStatus = Literal[
    "queued", "running", "completed", "completed_with_errors", "stopped", "failed", "cancelled"
]
MAX_FALLBACK_MODELS = 5
TERMINAL_STATUSES: frozenset[str] = frozenset(
    {"completed", "completed_with_errors", "stopped", "failed", "cancelled"}
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Usage(_Frozen):
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0, description="Cost in USD as billed by the provider.")


class JudgeUsage(Usage):
    """What a job's LLM judge calls cost (a part of the job's usage, shown separately)."""

    calls: int = Field(default=0, ge=0, description="Judge calls that answered or failed (billing).")


class FallbackModel(_Frozen):
    """One model of a job's fallback chain (tried in order when the one before is unavailable)."""

    provider: ProviderName | None = Field(default=None, examples=["openrouter"])
    id: str = Field(examples=["openai/gpt-4o-mini"])
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)


class ModelUsed(_Frozen):
    """The model that produced something (an item, an attempt): the provider adapter's name and its model id."""

    provider: str | None = Field(default=None, examples=["ollama"])
    id: str = Field(examples=["smollm2:135m"])


class ModelRef(FallbackModel):
    fallback: list[FallbackModel] = Field(
        default_factory=list,
        max_length=MAX_FALLBACK_MODELS,
        description="Models to switch to, in order, when this one is unavailable, unknown to its provider, out of "
        "credits or failing (open breaker): the remaining items go to the next model.",
    )

    def chain(self) -> list[FallbackModel]:
        """The primary model, then its fallbacks: every model the job may use, in order."""
        return [FallbackModel.model_validate(self.model_dump(exclude={"fallback"})), *self.fallback]


class Prompts(_Frozen):
    system: str = ""
    user: str


class NearDuplicates(_Frozen):
    """Near-duplicate control: an item whose text (``fields``) has an estimated Jaccard similarity ≥ ``threshold``
    with an accepted item (MinHash LSH over word 3-shingles) is rejected (``near_duplicate``) and regenerated."""

    fields: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Dotted paths of the compared text fields; empty: every string of the item.",
    )
    threshold: float = Field(
        default=0.8, gt=0, le=1, description="Jaccard similarity that counts as a duplicate."
    )


class ValidationSpec(_Frozen):
    mode: ValidationMode = "strict"
    rules: list[dict[str, Any]] = Field(default_factory=list)
    near_duplicates: NearDuplicates | None = Field(
        default=None, description="Reject near-duplicates too (MinHash LSH), not only identical items."
    )


SeedSampling = Literal["ordered", "shuffle", "with_replacement"]


class SeedRef(_Frozen):
    """A template's or job's seed dataset: each item gets one row of it as variables."""

    dataset_id: str
    sampling: SeedSampling = "ordered"
    columns: list[str] | None = Field(default=None, description="Only these columns (default all).")


class JudgeModel(_Frozen):
    provider: ProviderName | None = None
    id: str


class JudgeSpec(_Frozen):
    """An LLM judge (``llmts_templating.judge.JudgeRules``): scores each item; ``accept`` decides."""

    model: JudgeModel
    rubric: str
    scores: dict[str, list[float]] = Field(description="Score name → [min, max].")
    accept: str = Field(description="An expression over the scores, e.g. `quality >= 4`.")
    max_tokens: int | None = Field(default=None, ge=1)
    concurrency: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="Judge calls of a job at once; default: the job's concurrency.",
    )


class StageSpec(_Frozen):
    """A later stage of a multi-stage template: its prompts see the item's variables, the top-level output as
    ``main`` and each earlier stage's output under its name; its output is stored under its name in the item."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, serialize_by_alias=True)

    name: str
    prompts: Prompts
    json_schema: dict[str, Any] = Field(alias="schema")
    validation: ValidationSpec = Field(default_factory=ValidationSpec)


class TemplateSnapshot(_Frozen):
    """The template version a job runs with; carried in the command so history survives edits and deletion."""

    id: str
    version: int = Field(ge=1)
    name: str
    owner_id: str
    output_format: OutputFormat = "json"
    prompts: Prompts
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    variables: dict[str, Any] = Field(default_factory=dict)
    tasks: list[dict[str, Any]] = Field(default_factory=list)
    model: ModelRef | None = None
    seed: SeedRef | None = None
    judge: JudgeSpec | None = None
    stages: list[StageSpec] = Field(
        default_factory=list,
        description="Stages after the top-level prompts (stage `main`); an item is complete after the last.",
    )

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, serialize_by_alias=True)


class Counts(_Frozen):
    requested: int = 0
    succeeded: int = 0
    rejected: int = 0
    attempts: int = 0
