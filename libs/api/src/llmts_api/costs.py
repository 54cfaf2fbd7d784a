"""Cost figures of one job in ``GET /history/{id}``: what the responses reported vs what the provider's books say
(reconciled), spend per attempt kind, and the provider prompt cache."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

JOB_COSTS: dict[str, Any] = {
    "reported_cost_usd": 0.0025074,
    "reconciled_cost_usd": 0.0025971,
    "difference_usd": 0.0000897,
    "reconciled_attempts_reported_usd": 0.0002388,
    "reconciled_attempts_books_usd": 0.0003285,
    "attempts": {"reconciled": 3, "pending": 0, "sampled_out": 18, "gone": 0, "not_reconcilable": 0},
    "prompt_cache": {"cached_tokens": 6000, "cache_write_tokens": 300, "saved_usd": 0.000675},
    "by_kind": {
        "first": {
            "calls": 20,
            "prompt_tokens": 8240,
            "completion_tokens": 1920,
            "cost_usd": 0.002388,
            "best_cost_usd": 0.0024777,
        },
        "repair": {
            "calls": 1,
            "prompt_tokens": 412,
            "completion_tokens": 96,
            "cost_usd": 0.0001194,
            "best_cost_usd": 0.0001194,
        },
    },
}


class ReconcileCounts(BaseModel):
    reconciled: int = Field(description="Attempts looked up in the provider's books.")
    pending: int = Field(
        description="Attempts waiting for their lookup (usage missing or cut, cache read, sampled)."
    )
    sampled_out: int = Field(description="Attempts of a provider with books that the sample did not pick.")
    gone: int = Field(description="Attempts whose record was not found after every try (reported cost kept).")
    not_reconcilable: int = Field(
        description="Attempts without a provider record: other providers, cache hits, calls refused before they "
        "started, non-streamed calls that timed out."
    )


class KindSpend(BaseModel):
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float = Field(description="What the responses reported.")
    best_cost_usd: float = Field(description="Reconciled cost where looked up, reported cost elsewhere.")


class PromptCachePublic(BaseModel):
    cached_tokens: int = Field(description="Prompt tokens read from the provider's prompt cache.")
    cache_write_tokens: int = Field(description="Prompt tokens written to it.")
    saved_usd: float = Field(
        description="What the reads saved (cached tokens × (prompt price − cached price)), from the provider's "
        "books (OpenRouter cache_discount) of the reconciled attempts."
    )


class JobCostsPublic(BaseModel):
    """Reported vs reconciled cost of a job, spend per attempt kind, the provider prompt cache."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [JOB_COSTS]})
    reported_cost_usd: float = Field(description="Σ the cost each response reported (what was charged).")
    reconciled_cost_usd: float = Field(
        description="Σ the provider's books over the reconciled attempts + the reported cost of the others."
    )
    difference_usd: float = Field(description="reconciled_cost_usd − reported_cost_usd.")
    reconciled_attempts_reported_usd: float = Field(
        description="What the reconciled attempts alone reported."
    )
    reconciled_attempts_books_usd: float = Field(description="What the books say of those same attempts.")
    attempts: ReconcileCounts
    prompt_cache: PromptCachePublic
    by_kind: dict[str, KindSpend] = Field(
        description="Spend per attempt kind: first (first try), repair, fresh (a cut answer asked again), retry "
        "(a transient error's retry), and any other kind the generator records."
    )
