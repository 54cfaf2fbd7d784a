"""Items of a generation job's result: what each was generated from (``inputs``) and how it was made
(``provenance``), and the result's query parameters (used by ``llmts_api.generation``'s answers)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from llmts_api.paging import MAX_OFFSET


class ResultQuery(BaseModel):
    """Query parameters of ``GET /generate/{job_id}/result``."""

    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    include: str | None = Field(
        default=None, pattern=r"^rejected$", description="'rejected' adds rejected items"
    )


class ItemInputsPublic(BaseModel):
    """What an item was generated from (stored at acceptance): join a result back to its input with these."""

    model_config = ConfigDict(extra="allow")
    target: int = Field(
        description="The wanted item's number, 0..N-1 (the prompt's ``index``).", examples=[3]
    )
    task: int = Field(description="The task's number in the job's tasks (0 without tasks).", examples=[1])
    task_index: int = Field(description="The item's number within its task (its ``count``).", examples=[0])
    row: dict[str, Any] = Field(
        default_factory=dict, description="The task row (its variables).", examples=[{"topic": "Physics"}]
    )
    variables: dict[str, Any] | None = Field(
        default=None, description="The request's variables (for every item), when there are any."
    )


class ItemProvenancePublic(BaseModel):
    """How an item was made (issue 18): its task, seed row, sampled values, model, attempts and judge scores."""

    model_config = ConfigDict(extra="allow")
    task_index: int = Field(description="The item's number within its task.", examples=[0])
    dataset_id: str | None = Field(default=None, description="The seed dataset the row came from.")
    seed_row: int | None = Field(
        default=None, description="The seed dataset row number (0-based) the item got; null without a seed."
    )
    sampled: dict[str, Any] = Field(
        default_factory=dict,
        description="The sampled variables' values (drawn from the job seed, no tokens).",
        examples=[{"tone": "formal", "rating": 4}],
    )
    model: str | None = Field(default=None, description="The model id that produced the item.")
    provider: str | None = Field(default=None, description="Its provider (null: the default one).")
    attempts: int = Field(description="Item attempts (repairs included) until it was valid.", examples=[1])
    judge: dict[str, Any] | None = Field(
        default=None, description="The LLM judge's scores {name: number}, when the job has a judge."
    )
