"""The generator's answer views: timestamps in the one API format (UTC, ending in ``Z``)."""

from __future__ import annotations

from datetime import UTC, datetime

from llmts_generator.entrypoints.views import attempt_view, item_view, job_view


def test_job_timings_end_in_z() -> None:
    doc = {
        "_id": "j1",
        "status": "running",
        "created_at": datetime(2026, 12, 6, 23, 0, tzinfo=UTC),
        "started_at": datetime(2026, 12, 6, 23, 0, 1),  # naive, as MongoDB returns it
    }
    timings = job_view(doc)["timings"]
    assert timings["created_at"] == "2026-12-06T23:00:00Z"
    assert timings["started_at"] == "2026-12-06T23:00:01Z"
    assert timings["finished_at"] is None


def test_attempt_started_at_ends_in_z() -> None:
    assert attempt_view({"started_at": datetime(2026, 1, 2, 3, 4, 5)})["started_at"] == "2026-01-02T03:04:05Z"


def test_items_and_attempts_carry_their_inputs_target() -> None:
    inputs = {"target": 2, "task": 1, "task_index": 0, "row": {"topic": "b"}}
    accepted = {"index": 0, "status": "accepted", "data_json": "{}", "inputs": inputs}
    rejected = {"index": -1, "status": "rejected", "inputs": inputs}
    assert item_view(accepted)["inputs"] == inputs
    assert item_view(rejected)["inputs"] == inputs
    assert attempt_view({"target": 2})["target"] == 2
