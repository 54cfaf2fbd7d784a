"""The parts of a job's public view (``JobPublic`` in :mod:`llmts_api.generation`): counts, usage, the provider
concurrency, the model and template it runs, its timings."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class Counts(BaseModel):
    requested: int | None = None
    succeeded: int = 0
    rejected: int = 0
    attempts: int = 0
    item_attempts: int = 0
    in_flight: int | None = None
    cache_hits: int = Field(
        default=0, description="Item attempts answered from the response cache (no call)."
    )
    cache_misses: int = Field(default=0, description="Item attempts looked up in the cache and not found.")


class UsagePublic(BaseModel):
    model_config = ConfigDict(extra="allow")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


class ConcurrencyPublic(BaseModel):
    """Calls at once to one provider, in the generator process that runs the job (shared by all its jobs)."""

    current: int = Field(description="Calls allowed at once now (the adaptive limit).", examples=[1])
    ceiling: int = Field(description="The configured most (PROVIDER_CONCURRENCY).", examples=[4])
    in_flight: int = Field(default=0, description="Calls in flight to it now, all jobs of the process.")
    adaptive: bool = Field(default=True, description="False: the ceiling is a fixed limit.")
    process_cap: int | None = Field(
        default=None,
        description="The generator's process-wide cap on calls in flight, all providers together, while its event "
        "loop lags (LOOP_LAG_TARGET_MS: the process, not the provider, is the bottleneck); null: none now.",
    )


class ModelRefPublic(BaseModel):
    """A model as a job names it: provider (null: the default provider) and id, with the job's sampling settings."""

    model_config = ConfigDict(extra="allow")
    provider: str | None = Field(default=None, examples=["openrouter"])
    id: str = Field(examples=["openai/gpt-4o-mini"])
    temperature: float | None = None
    max_tokens: int | None = None


class JobModelPublic(ModelRefPublic):
    """The job's model and its fallback chain."""

    fallback: list[ModelRefPublic] = Field(default_factory=list)


class JobTemplatePublic(BaseModel):
    """The template snapshot a job runs."""

    model_config = ConfigDict(extra="allow")
    id: str
    version: int
    name: str | None = Field(default=None, examples=["Quiz questions"])
    output_format: str | None = Field(default=None, examples=["json"])


class JobTimings(BaseModel):
    model_config = ConfigDict(extra="allow")
    created_at: datetime | None = Field(default=None, description="When the job was accepted.")
    queued_at: datetime | None = Field(default=None, description="When the generator took the command.")
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = Field(default=None, description="Started to finished (or to now).")


class ActiveModelPublic(BaseModel):
    model_config = ConfigDict(extra="allow")
    provider: str | None = None
    id: str
    position: int = Field(description="0: the job's model, 1…: its fallbacks.")
