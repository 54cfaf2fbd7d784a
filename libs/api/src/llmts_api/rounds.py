"""Request bodies of a finished job's later rounds (extend, resume, retry-rejected; ``llmts_api.generation``
re-exports them)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ExtendRequest(BaseModel):
    """``POST /generate/{id}/extend``: add ``count`` items to a finished job (new indexes, dedup and ``unique``
    rules checked against the existing items)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"count": 500}]})
    count: int = Field(ge=1, description="Items to add (≤ the configured max per job).")
    max_cost_usd: float | None = Field(default=None, gt=0, description="Spending cap of this round.")


class ResumeRequest(BaseModel):
    """``POST /generate/{id}/resume`` and ``/retry-rejected``: an optional new spending cap for the round."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"max_cost_usd": 0.5}]})
    max_cost_usd: float | None = Field(default=None, gt=0, description="Spending cap of this round.")
