"""Model comparison (issue 18 #6), pure: the figures of one job, the winner, the body that runs it in full.

A comparison is one ordinary job per model. Its report reads each job's history (``GET /history/{id}``: the job
and its attempts) and its accepted items (``GET /generate/{id}/result``); nothing here does I/O.

Figures of a job, from its attempts (the generator's attempt view: ``slot``, ``target``, ``item_attempt``,
``outcome``, ``latency_ms``):

- an *item* is one slot working one target (``(slot, target)``); it counts once one of its item attempts has
  concluded (an outcome other than ``retried`` / ``fallback``: those calls are billed but are not item attempts);
- **first-try validity**: items whose first item attempt concluded ``valid`` / items counted;
- **repairs per item**: concluded item attempts after the first, per item counted;
- **latency p50/p95**: nearest-rank percentiles of ``latency_ms`` over every call (retries included);
- **cost per valid item**: the job's billed cost / its valid (succeeded) items; null without a valid item;
- **judge score**: mean, over the accepted items carrying judge scores, of each item's mean score; null when
  none carries one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmts_api.compare import WINNER_RULE
from llmts_api.generation import TERMINAL_STATUSES

__all__ = ["WINNER_RULE"]

NOT_ITEM_ATTEMPTS = frozenset({"retried", "fallback"})


@dataclass(frozen=True)
class Figures:
    items_tried: int
    first_try_validity: float | None
    repairs_per_item: float | None
    latency_p50: float | None
    latency_p95: float | None
    calls: int


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


def attempt_figures(attempts: Iterable[Mapping[str, Any]]) -> Figures:
    """First-try validity, repairs per item and latency percentiles of a job's attempts."""
    first_valid: dict[tuple[Any, Any], bool] = {}
    later: dict[tuple[Any, Any], set[tuple[str, int]]] = {}  # item → (stage, item attempt) of its repairs
    latencies: list[float] = []
    for attempt in attempts:
        if attempt.get("kind") == "judge":  # the LLM judge's calls: not the compared model's (issue 18)
            continue
        latency = attempt.get("latency_ms")
        if isinstance(latency, int | float) and not isinstance(latency, bool):
            latencies.append(float(latency))
        outcome = attempt.get("outcome")
        if outcome is None or outcome in NOT_ITEM_ATTEMPTS:
            continue
        key = (attempt.get("slot"), attempt.get("target"))
        number = int(attempt.get("item_attempt") or 1)
        if number == 1:  # each stage's first try (multi-stage items): right first time only if every one was
            first_valid[key] = first_valid.get(key, True) and outcome == "valid"
        else:
            later.setdefault(key, set()).add((str(attempt.get("stage") or "main"), number))
    tried = len(first_valid)
    repairs = sum(len(numbers) for key, numbers in later.items() if key in first_valid)
    return Figures(
        items_tried=tried,
        first_try_validity=round(sum(first_valid.values()) / tried, 4) if tried else None,
        repairs_per_item=round(repairs / tried, 4) if tried else None,
        latency_p50=percentile(latencies, 50),
        latency_p95=percentile(latencies, 95),
        calls=len(latencies),
    )


def cost_per_valid_item(cost_usd: float, valid: int) -> float | None:
    return round(cost_usd / valid, 8) if valid > 0 else None


def item_judge_score(item: Mapping[str, Any]) -> float | None:
    """The mean of an item's judge scores (``judge.scores`` or ``judge_scores``: ``{name: number}``), or None."""
    judge = item.get("judge")
    scores = judge.get("scores") if isinstance(judge, Mapping) else item.get("judge_scores")
    if not isinstance(scores, Mapping):
        return None
    numbers = [float(v) for v in scores.values() if isinstance(v, int | float) and not isinstance(v, bool)]
    return sum(numbers) / len(numbers) if numbers else None


def judge_score(items: Iterable[Mapping[str, Any]]) -> float | None:
    scores = [s for s in (item_judge_score(i) for i in items) if s is not None]
    return round(sum(scores) / len(scores), 4) if scores else None


def model_key(model: Mapping[str, Any]) -> dict[str, Any]:
    return {"provider": model.get("provider"), "id": model["id"]}


def model_row(
    model: Mapping[str, Any],
    job_id: str,
    history: Mapping[str, Any],
    items: Sequence[Mapping[str, Any]],
    *,
    items_total: int,
    shown: int,
) -> dict[str, Any]:
    """One model's column of the report, from its job's history answer (job + attempts) and accepted items."""
    counts = history.get("counts") or {}
    usage = history.get("usage") or {}
    attempts = (history.get("attempts") or {}).get("items") or []
    figures = attempt_figures(attempts)
    cost = float(usage.get("cost_usd") or 0.0)
    succeeded = int(counts.get("succeeded") or 0)
    return {
        "model": model_key(model),
        "job_id": job_id,
        "status": str(history.get("status") or "queued"),
        "requested": history.get("requested"),
        "succeeded": succeeded,
        "rejected": int(counts.get("rejected") or 0),
        "items_tried": figures.items_tried,
        "first_try_validity": figures.first_try_validity,
        "repairs_per_item": figures.repairs_per_item,
        "cost_usd": cost,
        "cost_per_valid_item_usd": cost_per_valid_item(cost, succeeded),
        "latency_ms": {"p50": figures.latency_p50, "p95": figures.latency_p95, "calls": figures.calls},
        "usage": {
            "prompt_tokens": int(usage.get("prompt_tokens") or 0),
            "completion_tokens": int(usage.get("completion_tokens") or 0),
            "cost_usd": cost,
        },
        "judge_score": judge_score(items),
        "items": [_item_view(i) for i in items[:shown]],
        "items_total": items_total,
    }


def _item_view(item: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("index", "data", "attempts", "usage", "inputs", "judge", "judge_scores")
    return {k: item[k] for k in keep if k in item}


def overall_status(rows: Sequence[Mapping[str, Any]]) -> str:
    statuses = [row["status"] for row in rows]
    if any(s not in TERMINAL_STATUSES for s in statuses):
        return "running"
    return "completed" if all(s == "completed" for s in statuses) else "incomplete"


def _rank(row: Mapping[str, Any], position: int) -> tuple[float, float, float, int]:
    validity = row.get("first_try_validity")
    cost = row.get("cost_per_valid_item_usd")
    p50 = (row.get("latency_ms") or {}).get("p50")
    return (
        -(validity if validity is not None else -1.0),
        cost if cost is not None else math.inf,
        p50 if p50 is not None else math.inf,
        position,
    )


def winner(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The winner by :data:`WINNER_RULE`; None while a job runs or when no job completed."""
    if overall_status(rows) == "running":
        return None
    ranked = sorted(
        (_rank(row, position), position) for position, row in enumerate(rows) if row["status"] == "completed"
    )
    return rows[ranked[0][1]] if ranked else None


def start_body(record: Mapping[str, Any], model: Mapping[str, Any]) -> dict[str, Any]:
    """The ``POST /generate`` body of the full job on ``model``: the comparison's template, variables and
    validation settings (``count`` is the user's to add)."""
    body: dict[str, Any] = {
        "template_id": record["template_id"],
        "model": dict(model),
        "variables": dict(record.get("variables") or {}),
    }
    options = record.get("options") or {}
    for key in ("validation_mode", "max_attempts_per_item", "dedup"):
        if options.get(key) is not None:
            body[key] = options[key]
    return body
