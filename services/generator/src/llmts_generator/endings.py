"""The start event of a job and the terminal event of a job's round (cancelled, failed, or completed /
completed_with_errors / stopped), built from the request, the job document and the round's figures (split out of
the runner)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from llmts_common.contracts import (
    GenerationCancelled,
    GenerationCompleted,
    GenerationFailed,
    GenerationRequested,
    GenerationStarted,
    Message,
    Usage,
)
from llmts_common.contracts.common_models import JudgeUsage
from llmts_generator.domain import state
from llmts_generator.domain.rounds import round_end
from llmts_generator.stages import item_schema

__all__ = ["RoundFigures", "started_event", "terminal_event"]


@dataclass(frozen=True)
class RoundFigures:
    """What the terminal event reports: items made and rejected, provider calls, usage."""

    succeeded: int
    rejected: int
    attempts: int
    usage: Usage
    judge_usage: JudgeUsage | None = None  # the LLM judge's part of usage (jobs with a judge)


def _duration(doc: Mapping[str, Any], now: datetime) -> float:
    started = doc.get("started_at")
    if not isinstance(started, datetime):
        return 0.0
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return max(0.0, (now - started).total_seconds())


def terminal_event(
    doc: Mapping[str, Any],
    figures: RoundFigures,
    *,
    requested: int,
    now: datetime,
    status: str,
    stop_reason: str | None,
    code: str | None,
    reason: str | None,
) -> Message:
    common: dict[str, Any] = {
        "job_id": str(doc["_id"]),
        "user_id": str(doc["user_id"]),
        "succeeded": figures.succeeded,
        "rejected": figures.rejected,
        "attempts": figures.attempts,
        "usage": figures.usage,
        "judge_usage": figures.judge_usage,
        **round_end(doc, figures.succeeded, figures.usage.cost_usd),
    }
    if status == state.CANCELLED:
        return GenerationCancelled(**common)
    if status == state.FAILED:
        return GenerationFailed(code=code or "failed", reason=reason or "the job failed", **common)
    return GenerationCompleted(
        status="stopped"
        if status == state.STOPPED
        else ("completed" if status == state.COMPLETED else "completed_with_errors"),
        requested=requested,
        duration_seconds=round(_duration(doc, now), 3),
        stop_reason=stop_reason,
        **common,
    )


def started_event(
    req: GenerationRequested, job_id: str, user_id: str, requested: int, now: datetime
) -> GenerationStarted:
    schema, enforced = item_schema(req)  # a multi-stage item's: main's with each stage's under its name
    return GenerationStarted(
        job_id=job_id,
        user_id=user_id,
        requested=requested,
        model=req.model,
        template_id=req.template.id,
        template_version=req.template.version,
        started_at=now,
        # what the exporter names and lays out files with (the schema only when items were checked against it,
        # item_schema_enforced) and what other consumers read the items with
        template_name=req.template.name,
        output_format=req.template.output_format,
        item_schema=schema,
        item_schema_enforced=enforced,
    )
