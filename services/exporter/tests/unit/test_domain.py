"""The export state machine, readiness rules and projection rules (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from llmts_common.contracts import GenerationCancelled, GenerationCompleted, GenerationFailed, Usage
from llmts_exporter.domain.exports import (
    Fail,
    InvalidTransition,
    JobView,
    Run,
    Wait,
    check_transition,
    readiness,
)
from llmts_exporter.domain.jobs import terminal_fields
from llmts_exporter.handlers import parse_options

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)


def _job(**kw: object) -> JobView:
    return JobView.model_validate({"job_id": "j", "user_id": "u", **kw})


@pytest.mark.parametrize(
    ("current", "target", "ok"),
    [
        ("queued", "running", True),
        ("queued", "failed", True),
        ("queued", "ready", False),
        ("running", "ready", True),
        ("running", "queued", True),
        ("ready", "running", False),
        ("failed", "queued", False),
    ],
)
def test_transitions(current: str, target: str, ok: bool) -> None:
    if ok:
        check_transition(current, target)
    else:
        with pytest.raises(InvalidTransition):
            check_transition(current, target)


def test_unknown_job_waits_then_fails() -> None:
    args = {"job_id": "j", "user_id": "u", "items_projected": 0}
    assert isinstance(readiness(None, **args, now=NOW, deadline=LATER), Wait)  # type: ignore[arg-type]
    late = readiness(None, **args, now=LATER, deadline=LATER)  # type: ignore[arg-type]
    assert isinstance(late, Fail)
    assert "not known" in late.reason


def test_a_job_of_another_user_fails_like_a_missing_one_at_once() -> None:
    decision = readiness(
        _job(user_id="other"), job_id="j", user_id="u", items_projected=0, now=NOW, deadline=LATER
    )
    assert decision == Fail("job j not found")


def test_running_job_waits_and_fails_after_the_deadline() -> None:
    job = _job(status="running")
    assert isinstance(
        readiness(job, job_id="j", user_id="u", items_projected=3, now=NOW, deadline=LATER), Wait
    )
    late = readiness(job, job_id="j", user_id="u", items_projected=3, now=LATER, deadline=LATER)
    assert isinstance(late, Fail)
    assert "did not finish in time" in late.reason


def test_finished_job_runs_only_when_all_items_arrived() -> None:
    job = _job(status="completed", terminal=True, succeeded=3)
    assert readiness(job, job_id="j", user_id="u", items_projected=2, now=NOW, deadline=LATER) == Wait(
        "waiting for the job's items"
    )
    assert readiness(job, job_id="j", user_id="u", items_projected=3, now=NOW, deadline=LATER) == Run()
    late = readiness(job, job_id="j", user_id="u", items_projected=2, now=LATER, deadline=LATER)
    assert isinstance(late, Fail)
    assert "only 2 arrived" in late.reason


def test_terminal_fields_of_each_ending() -> None:
    usage = Usage(prompt_tokens=1, completion_tokens=2, cost_usd=0.5)
    done = GenerationCompleted(
        job_id="j", user_id="u", status="completed_with_errors", requested=3, succeeded=2, rejected=1,
        attempts=4, usage=usage, duration_seconds=1.0, stop_reason="budget",
    )  # fmt: skip
    assert terminal_fields(done)["status"] == "completed_with_errors"
    assert terminal_fields(done)["terminal"] is True
    failed = GenerationFailed(job_id="j", user_id="u", code="insufficient_credits", reason="402")
    assert terminal_fields(failed)["stop_reason"] == "insufficient_credits: 402"
    assert terminal_fields(GenerationCancelled(job_id="j", user_id="u"))["status"] == "cancelled"


@pytest.mark.parametrize(
    ("fmt", "options", "problem"),
    [
        ("csv", {"csv_bom": True}, None),
        ("docx", {}, "unknown export format 'docx'"),
        ("csv", {"zip": 1}, "unknown export options: zip"),
        ("csv", {"csv_delimiter": '"'}, "invalid export options"),
    ],
)
def test_parse_options(fmt: str, options: dict[str, object], problem: str | None) -> None:
    parsed, why = parse_options(fmt, options)
    if problem is None:
        assert why is None
        assert parsed is not None
    else:
        assert parsed is None
        assert why is not None
        assert problem in why
