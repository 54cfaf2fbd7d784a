"""Prometheus metrics of the generator, counted from what the job writer made durable (so a retried or resumed
batch is never counted twice by this process)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import Counter

ITEMS = Counter("llmts_generator_items_total", "Items stored", ["outcome"])  # accepted | rejected
ATTEMPTS = Counter("llmts_generator_attempts_total", "Provider calls recorded", ["provider", "outcome"])
TOKENS = Counter("llmts_generator_tokens_total", "Tokens billed", ["provider", "kind"])  # prompt | completion
COST = Counter("llmts_generator_cost_usd_total", "Cost billed in USD", ["provider"])
PROVIDER_ERRORS = Counter(
    "llmts_generator_provider_errors_total", "Provider errors by type", ["provider", "type"]
)


def record_batch(attempts: Iterable[Mapping[str, Any]], items: Iterable[Mapping[str, Any]]) -> None:
    for a in attempts:
        provider = str(a.get("provider") or "unknown")
        ATTEMPTS.labels(provider, str(a.get("outcome") or "unknown")).inc()
        TOKENS.labels(provider, "prompt").inc(int(a.get("prompt_tokens") or 0))
        TOKENS.labels(provider, "completion").inc(int(a.get("completion_tokens") or 0))
        COST.labels(provider).inc(float(a.get("cost_usd") or 0.0))
        error = a.get("error")
        if isinstance(error, Mapping):
            PROVIDER_ERRORS.labels(provider, str(error.get("code") or error.get("type") or "error")).inc()
    for item in items:
        ITEMS.labels(str(item.get("status") or "unknown")).inc()
