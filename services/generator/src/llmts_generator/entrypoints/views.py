"""Answer views of the generator's HTTP API: a stored job, item or attempt document → its public JSON shape
(the shapes are declared by ``llmts_api.generation``; routes validate against them)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from llmts_common.times import iso_z
from llmts_generator.domain.progress import status_progress


def _iso(value: Any) -> str | None:
    return iso_z(value) if isinstance(value, datetime) else None


def _duration(doc: Mapping[str, Any]) -> float | None:
    started, finished = doc.get("started_at"), doc.get("finished_at")
    if isinstance(started, datetime):
        end = finished if isinstance(finished, datetime) else datetime.now(UTC)
        if started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        if end.tzinfo is None:
            end = end.replace(tzinfo=UTC)
        return round(max(0.0, (end - started).total_seconds()), 3)
    return None


def job_view(
    doc: Mapping[str, Any],
    in_flight: int | None = None,
    concurrency: Mapping[str, Mapping[str, Any]] | None = None,
    rate: float | None = None,
) -> dict[str, Any]:
    """A job document as ``JobPublic``; ``in_flight``, ``concurrency`` and ``rate`` (valid items per second) are
    live figures of the runner (None when the job does not run in this process)."""
    counts = doc.get("counts") or {}
    requested = doc.get("requested")
    progress = status_progress(
        str(doc.get("status")),
        requested if isinstance(requested, int) else None,
        int(counts.get("succeeded", 0)),
        _duration(doc),
        rate,
    )
    usage = doc.get("usage") or {}
    error = doc.get("error") or None
    return {
        "job_id": doc["_id"],
        "status": doc.get("status"),
        "template": doc.get("template"),
        "model": doc.get("model"),
        "requested": doc.get("requested"),
        "counts": {
            "requested": doc.get("requested"),
            "succeeded": int(counts.get("succeeded", 0)),
            "rejected": int(counts.get("rejected", 0)),
            "attempts": int(counts.get("attempts", 0)),
            "item_attempts": int(counts.get("item_attempts", 0)),
            "in_flight": in_flight,
            "cache_hits": int(counts.get("cache_hits", 0)),
            "cache_misses": int(counts.get("cache_misses", 0)),
        },
        "usage": {
            "prompt_tokens": int(usage.get("prompt_tokens", 0)),
            "completion_tokens": int(usage.get("completion_tokens", 0)),
            "cost_usd": round(float(usage.get("cost_usd", 0.0)), 10),
        },
        "options": {
            "validation_mode": doc.get("validation_mode"),
            "concurrency": doc.get("concurrency"),
            "max_attempts_per_item": doc.get("max_attempts_per_item"),
            "max_cost_usd": doc.get("max_cost_usd"),
            "dedup": doc.get("dedup"),
        },
        "seed": doc.get("seed"),
        "cache": doc.get("cache"),
        "mode": doc.get("mode") or "sync",
        "batches": batches_view(doc.get("batches")),
        "saved_cost_usd": round(float(usage.get("saved_cost_usd", 0.0)), 10),
        "round": int(doc.get("round", 1)),
        "judge_usage": _judge_usage(doc.get("judge")),
        "near_duplicates_rejected": int(counts.get("near_duplicates", 0)),
        "rounds": [_round_view(r) for r in doc.get("rounds") or [] if isinstance(r, Mapping)],
        "model_active": doc.get("model_active"),
        "model_switches": switches_view(doc.get("model_switches")),
        "concurrency": {k: dict(v) for k, v in concurrency.items()} if concurrency is not None else None,
        "stop_reason": doc.get("stop_reason"),
        "progress": progress,
        "error": error,
        "cancel_requested": bool(doc.get("cancel_requested")),
        "timings": {
            "created_at": _iso(doc.get("created_at")),
            "queued_at": _iso(doc.get("queued_at")),
            "started_at": _iso(doc.get("started_at")),
            "finished_at": _iso(doc.get("finished_at")),
            "duration_seconds": _duration(doc),
        },
    }


def _judge_usage(judge: Any) -> dict[str, Any] | None:
    """The LLM judge's counters of a job (``judge.calls`` …), None when it never called a judge."""
    if not isinstance(judge, Mapping):
        return None
    return {
        "calls": int(judge.get("calls", 0)),
        "prompt_tokens": int(judge.get("prompt_tokens", 0)),
        "completion_tokens": int(judge.get("completion_tokens", 0)),
        "cost_usd": round(float(judge.get("cost_usd", 0.0)), 10),
    }


def batches_view(batches: Any) -> dict[str, Any] | None:
    """A batch-mode job's provider batches: how many were submitted, how many are not read yet, and their lines."""
    if not isinstance(batches, Mapping) or not batches:
        return None
    records = [r for r in batches.values() if isinstance(r, Mapping)]
    return {
        "submitted": len(records),
        "outstanding": sum(1 for r in records if not r.get("ingested")),
        "lines": sum(len(r.get("lines") or []) for r in records),
        "ids": [str(r.get("id")) for r in records],
    }


def _round_view(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (_iso(v) if k == "at" else v) for k, v in entry.items() if k != "command_id"}


def item_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    usage = doc.get("usage") or {}
    base = {
        "attempts": int(doc.get("attempts", 0)),
        "usage": {
            "prompt_tokens": int(usage.get("prompt_tokens", 0)),
            "completion_tokens": int(usage.get("completion_tokens", 0)),
            "cost_usd": float(usage.get("cost_usd", 0.0)),
        },
    }
    if doc.get("status") == "rejected":
        return {
            "index": None,
            "status": "rejected",
            "slot": doc.get("slot"),
            "reason": doc.get("reason"),
            "stage": doc.get("stage"),  # the later stage that spent its attempts (reason stage)
            "errors": doc.get("errors") or [],
            "last_output": doc.get("last_output"),
            "inputs": doc.get("inputs"),
            "judge": doc.get("judge"),
            "provenance": doc.get("provenance"),  # what it was made from (seed row, sampled values, model)
            **base,
        }
    data_json = doc.get("data_json")
    return {
        "index": int(doc["index"]),
        "status": "accepted",
        # how it was made (issue 18): task, seed row, sampled values, model, attempts, judge scores
        "provenance": doc.get("provenance"),
        "data": json.loads(data_json) if isinstance(data_json, str) else None,
        "model": doc.get("model"),
        "inputs": doc.get("inputs"),
        "judge": doc.get("judge"),
        **base,
    }


def attempt_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    error = doc.get("error") or None
    return {
        "slot": doc.get("slot"),
        "target": doc.get("target"),  # the item's inputs.target: joins an attempt to its item
        "call": doc.get("call"),
        "item_attempt": doc.get("item_attempt"),
        "kind": doc.get("kind"),
        "stage": doc.get("stage"),  # a later stage of a multi-stage item; null: the top-level stage (main)
        "outcome": doc.get("outcome"),
        "prompt_tokens": doc.get("prompt_tokens", 0),
        "completion_tokens": doc.get("completion_tokens", 0),
        "cost_usd": doc.get("cost_usd", 0.0),
        "latency_ms": doc.get("latency_ms"),
        "first_token_ms": doc.get("first_token_ms"),
        "finish_reason": doc.get("finish_reason"),
        "cached": bool(doc.get("cached")),
        "saved_cost_usd": doc.get("saved_cost_usd", 0.0),
        "cached_tokens": doc.get("cached_tokens", 0),
        "reconcile": doc.get("reconcile"),
        "reconciled_cost_usd": doc.get("reconciled_cost_usd"),
        "round": doc.get("round", 1),
        "mode": doc.get("mode") or "sync",  # batch: a line of a provider batch (batch_id), at the batch price
        "batch_id": doc.get("batch_id"),
        "error": {"code": error.get("code"), "message": error.get("message")} if error else None,
        "errors": doc.get("errors") or [],
        "started_at": _iso(doc.get("started_at")),
    }


def _add_usage(row: dict[str, Any], attempt: Mapping[str, Any]) -> None:
    row["prompt_tokens"] += int(attempt.get("prompt_tokens", 0))
    row["completion_tokens"] += int(attempt.get("completion_tokens", 0))
    row["cost_usd"] = round(row["cost_usd"] + float(attempt.get("cost_usd", 0.0)), 10)


def attempts_by_outcome(attempts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Count, tokens and cost of a job's attempts per outcome (``ok``, ``invalid``, ``provider_timeout`` …)."""
    by_outcome: dict[str, dict[str, Any]] = {}
    for a in attempts:
        key = str(a.get("outcome") or "unknown")
        row = by_outcome.setdefault(
            key, {"count": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
        )
        row["count"] += 1
        _add_usage(row, a)
    return by_outcome


def attempts_by_stage(attempts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Count, tokens and cost of a job's attempts per stage (``main``: the top-level prompts)."""
    by_stage: dict[str, dict[str, Any]] = {}
    for a in attempts:
        row = by_stage.setdefault(
            str(a.get("stage") or "main"),
            {"count": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0},
        )
        row["count"] += 1
        _add_usage(row, a)
    return by_stage


def switches_view(switches: Any) -> list[dict[str, Any]]:
    """A job's moves along its fallback chain, in order (stored keyed by the position moved to)."""
    if not isinstance(switches, Mapping):
        return []
    ordered = sorted(switches.items(), key=lambda kv: int(kv[0]))
    return [{**switch, "at": _iso(switch.get("at"))} for _, switch in ordered if isinstance(switch, Mapping)]


def attempts_by_model(attempts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Calls, valid answers, tokens and cost of a job's attempts per model, in the order the models were used."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for a in attempts:
        key = (str(a.get("provider") or ""), str(a.get("model") or ""))
        row = rows.setdefault(
            key,
            {
                "provider": key[0] or None,
                "id": key[1],
                "calls": 0,
                "valid": 0,
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "cost_usd": 0.0,
            },
        )
        row["calls"] += 1
        row["valid"] += 1 if a.get("outcome") == "valid" else 0
        _add_usage(row, a)
    return list(rows.values())
