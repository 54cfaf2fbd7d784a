"""Cost you can reconcile: which attempts are looked up in the provider's own books, and the spend summaries of
a job's history.

An attempt of a provider that keeps generation records (OpenRouter: ``GET /generation?id=``) and whose call got
a generation id is marked at write time:

- ``reconcile: "due"`` when what the response reported cannot be trusted or is incomplete: the cost was not
  reported (``missing``: no ``usage`` — an abandoned stream, a timeout after the first chunk), the call failed after
  the generation started (``cut``), or the prompt was partly served from the provider's prompt cache (``cached``:
  the saving comes from the provider's ``cache_discount``);
- ``reconcile: "sample"`` otherwise, with ``reconcile_point`` ∈ [0, 10 000) derived from the attempt id: the
  reconciler looks up those whose point is below ``RECONCILE_SAMPLE_RATE`` × 10 000, a deterministic sample (the
  same attempt is in or out whatever process or restart asks).

The reconciler replaces the marker by ``done`` (with ``reconciled_cost_usd``) or ``gone`` (no record after its
tries). ``cost_usd`` itself is never changed: it is what the job's budget and the user's usage were charged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

RECONCILING_PROVIDERS = frozenset({"openrouter"})
DUE = "due"
SAMPLE = "sample"
DONE = "done"
GONE = "gone"
POINTS = 10_000


def sample_point(attempt_id: str) -> int:
    """The attempt's place in [0, POINTS): the sample is every attempt whose point is below rate × POINTS."""
    return int.from_bytes(hashlib.sha256(attempt_id.encode()).digest()[:4], "big") % POINTS


def sample_threshold(rate: float) -> int:
    return max(0, min(POINTS, round(rate * POINTS)))


def reconcile_reason(*, cost_reported: bool, failed: bool, cached_tokens: int) -> str | None:
    """Why an attempt must be reconciled, None when only the sample may pick it."""
    if failed:
        return "cut"
    if not cost_reported:
        return "missing"
    if cached_tokens > 0:
        return "cached"
    return None


def mark_reconcile(attempt: dict[str, Any], *, failed: bool) -> None:
    """Set the reconciliation marker of a new attempt document (nothing for providers without records or calls
    without a generation id: a cache hit, a call refused before it started)."""
    if attempt.get("provider") not in RECONCILING_PROVIDERS or not attempt.get("generation_id"):
        return
    reason = reconcile_reason(
        cost_reported=bool(attempt.get("cost_reported")),
        failed=failed,
        cached_tokens=int(attempt.get("cached_tokens") or 0),
    )
    attempt["reconcile"] = DUE if reason is not None else SAMPLE
    attempt["reconcile_reason"] = reason
    attempt["reconcile_point"] = sample_point(str(attempt["_id"]))
    attempt["reconcile_after"] = attempt.get("started_at")
    attempt["reconcile_tries"] = 0


def reconciled_fields(stats: Any, *, now: Any) -> dict[str, Any]:
    """What a found generation record sets on its attempt (``stats``: ``llmts_providers.GenerationStats``)."""
    return {
        "reconcile": DONE,
        "reconciled_at": now,
        "reconciled_cost_usd": float(stats.total_cost_usd),
        "reconciled_prompt_tokens": int(stats.prompt_tokens),
        "reconciled_completion_tokens": int(stats.completion_tokens),
        "reconciled_cached_tokens": int(stats.cached_tokens),
        "cache_saved_usd": float(stats.cache_discount_usd or 0.0),
    }


def _usd(value: float) -> float:
    return round(value, 10)


def attempt_cost(attempt: Mapping[str, Any]) -> float:
    """The best known cost of an attempt: the provider's books when reconciled, else what the response said."""
    reconciled = attempt.get("reconciled_cost_usd")
    if attempt.get("reconcile") == DONE and isinstance(reconciled, int | float):
        return float(reconciled)
    return float(attempt.get("cost_usd") or 0.0)


def spend_by_kind(attempts: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Calls and spend per attempt kind (``first``, ``repair``, ``fresh``, ``retry`` … whatever kinds exist):
    reported, and best known (reconciled where looked up)."""
    rows: dict[str, dict[str, Any]] = {}
    for a in attempts:
        row = rows.setdefault(
            str(a.get("kind") or "unknown"),
            {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "best_cost_usd": 0.0},
        )
        row["calls"] += 1
        row["prompt_tokens"] += int(a.get("prompt_tokens") or 0)
        row["completion_tokens"] += int(a.get("completion_tokens") or 0)
        row["cost_usd"] = _usd(row["cost_usd"] + float(a.get("cost_usd") or 0.0))
        row["best_cost_usd"] = _usd(row["best_cost_usd"] + attempt_cost(a))
    return rows


def cost_summary(attempts: Iterable[Mapping[str, Any]], *, threshold: int = 0) -> dict[str, Any]:
    """A job's reported vs reconciled cost, its reconciliation progress and its prompt-cache figures.

    ``reported_cost_usd``: Σ what the responses said (what was charged); ``reconciled_cost_usd``: Σ the provider's
    books over the reconciled attempts, what the responses said for the others; ``difference_usd`` = reconciled −
    reported; ``reconciled_reported_usd``: what the reconciled attempts alone reported (the like-for-like part).
    """
    reported = best = looked_reported = looked = 0.0
    counts = {"reconciled": 0, "pending": 0, "sampled_out": 0, "gone": 0, "not_reconcilable": 0}
    cached_tokens = cache_write_tokens = 0
    saved = 0.0
    for a in attempts:
        cost = float(a.get("cost_usd") or 0.0)
        reported += cost
        best += attempt_cost(a)
        cached_tokens += int(a.get("cached_tokens") or 0)
        cache_write_tokens += int(a.get("cache_write_tokens") or 0)
        saved += float(a.get("cache_saved_usd") or 0.0)
        marker = a.get("reconcile")
        if marker == DONE:
            counts["reconciled"] += 1
            looked += attempt_cost(a)
            looked_reported += cost
        elif marker == DUE:
            counts["pending"] += 1
        elif marker == SAMPLE:
            chosen = int(a.get("reconcile_point") or 0) < threshold
            counts["pending" if chosen else "sampled_out"] += 1
        elif marker == GONE:
            counts["gone"] += 1
        else:
            counts["not_reconcilable"] += 1
    return {
        "reported_cost_usd": _usd(reported),
        "reconciled_cost_usd": _usd(best),
        "difference_usd": _usd(best - reported),
        "reconciled_attempts_reported_usd": _usd(looked_reported),
        "reconciled_attempts_books_usd": _usd(looked),
        "attempts": counts,
        "prompt_cache": {
            "cached_tokens": cached_tokens,
            "cache_write_tokens": cache_write_tokens,
            "saved_usd": _usd(saved),
        },
    }
