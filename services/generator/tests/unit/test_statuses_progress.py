"""Statuses that mean what they say (0 of N → failed with a reason; the cost cap → stopped) and the status's
``progress: {percent, eta_seconds}``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from llmts_generator.domain import state
from llmts_generator.domain.progress import status_progress
from llmts_generator.domain.scheduling import STOP_ATTEMPT_BUDGET, STOP_MAX_COST, Scheduler
from llmts_generator.entrypoints.views import job_view


def _stopped(reason: str, succeeded: int, rejected: int = 0, requested: int = 4) -> Scheduler:
    sched = Scheduler(requested=requested, concurrency=requested, budget=100, max_cost_usd=0.5)
    plans = sched.launch_all()
    for p in plans[:succeeded]:
        sched.slot_succeeded(p.slot)
    for p in plans[succeeded : succeeded + rejected]:
        sched.slot_rejected(p.slot)
    sched.stop(reason)
    for p in plans[succeeded + rejected :]:
        sched.slot_abandoned(p.slot)
    return sched


@pytest.mark.parametrize("reason", [STOP_ATTEMPT_BUDGET, STOP_MAX_COST])
def test_zero_of_n_is_failed_with_a_reason(reason: str) -> None:
    out = _stopped(reason, succeeded=0, rejected=2).outcome()
    assert (out.status, out.stop_reason, out.code) == ("failed", reason, "no_valid_items")
    assert out.reason is not None
    assert out.reason.startswith("0 of 4 items succeeded (2 rejected)")


def test_a_cost_cap_with_items_is_stopped_not_an_error() -> None:
    out = _stopped(STOP_MAX_COST, succeeded=2).outcome()
    assert (out.status, out.stop_reason, out.code) == ("stopped", STOP_MAX_COST, None)
    assert state.is_terminal(out.status)
    assert state.can_transition(state.RUNNING, state.STOPPED)


def test_the_attempt_budget_with_items_completes_with_errors() -> None:
    out = _stopped(STOP_ATTEMPT_BUDGET, succeeded=3, rejected=1).outcome()
    assert (out.status, out.stop_reason) == ("completed_with_errors", STOP_ATTEMPT_BUDGET)


def test_progress_from_counts_and_rate() -> None:
    assert status_progress("queued", 10, 0, None) == {"percent": 0.0, "eta_seconds": None}
    assert status_progress("running", 10, 0, 5.0) == {"percent": 0.0, "eta_seconds": None}  # no rate yet
    assert status_progress("running", 10, 4, 8.0) == {"percent": 40.0, "eta_seconds": 12.0}  # 0.5/s average
    assert status_progress("running", 10, 4, 8.0, live_rate=2.0) == {"percent": 40.0, "eta_seconds": 3.0}
    assert status_progress("running", 3, 1, 1.0) == {"percent": 33.3, "eta_seconds": 2.0}
    assert status_progress("stopped", 10, 4, 8.0) == {"percent": 40.0, "eta_seconds": 0.0}
    assert status_progress("running", None, 0, 1.0) == {"percent": None, "eta_seconds": None}


def test_the_status_view_carries_progress() -> None:
    now = datetime.now(UTC)
    doc = {
        "_id": "j1",
        "status": "running",
        "requested": 20,
        "counts": {"succeeded": 5},
        "started_at": now - timedelta(seconds=10),
    }
    progress = job_view(doc)["progress"]
    assert progress["percent"] == 25.0
    assert progress["eta_seconds"] == pytest.approx(30.0, abs=0.5)  # 15 left at 0.5 item/s
    assert job_view(doc, rate=3.0)["progress"]["eta_seconds"] == 5.0
