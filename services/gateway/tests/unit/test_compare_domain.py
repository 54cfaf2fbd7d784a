"""Model comparison's report arithmetic (``llmts_gateway.domain.compare``): first-try validity, repairs per item,
nearest-rank p50/p95, cost per valid item, judge score, the winner rule and the start body."""

from __future__ import annotations

from typing import Any

import pytest

from llmts_gateway.domain import compare


def attempt(
    slot: int, item_attempt: int, outcome: str, latency: float = 100.0, target: int | None = None
) -> dict[str, Any]:
    return {
        "slot": slot,
        "target": slot if target is None else target,
        "item_attempt": item_attempt,
        "outcome": outcome,
        "latency_ms": latency,
    }


def test_first_try_validity_and_repairs_count_items_not_calls() -> None:
    attempts = [
        attempt(0, 1, "valid"),
        attempt(1, 1, "retried"),  # a transport retry of the same item attempt: not an item attempt
        attempt(1, 1, "valid"),
        attempt(2, 1, "invalid"),
        attempt(2, 2, "invalid"),
        attempt(2, 3, "valid"),
        attempt(3, 1, "duplicate"),
        attempt(3, 2, "valid"),
        attempt(4, 1, None),  # in flight: not concluded, not counted
    ]
    figures = compare.attempt_figures(attempts)
    assert figures.items_tried == 4
    assert figures.first_try_validity == 0.5  # slots 0 and 1 of 4
    assert figures.repairs_per_item == 0.75  # slot 2: two repairs, slot 3: one
    assert figures.calls == 9


def test_a_rejected_slot_retried_on_its_target_counts_as_a_new_item() -> None:
    attempts = [attempt(0, 1, "invalid", target=0), attempt(5, 1, "valid", target=0)]
    figures = compare.attempt_figures(attempts)
    assert (figures.items_tried, figures.first_try_validity, figures.repairs_per_item) == (2, 0.5, 0.0)


def test_the_judge_calls_are_not_the_compared_models() -> None:
    judged = {**attempt(0, 1, "judge_reject", latency=5000.0), "kind": "judge"}
    attempts = [attempt(0, 1, "valid"), judged, attempt(1, 1, "valid")]
    figures = compare.attempt_figures(attempts)
    assert (figures.items_tried, figures.first_try_validity, figures.calls) == (2, 1.0, 2)
    assert figures.latency_p95 == 100.0


def test_a_multi_stage_item_is_right_first_time_only_if_every_stage_was() -> None:
    def staged(slot: int, item_attempt: int, outcome: str, stage: str | None) -> dict[str, Any]:
        return {**attempt(slot, item_attempt, outcome), "stage": stage}

    attempts = [
        staged(0, 1, "valid", None),
        staged(0, 1, "valid", "faq"),
        staged(1, 1, "valid", None),
        staged(1, 1, "invalid", "faq"),  # main right, its FAQ repaired once
        staged(1, 2, "valid", "faq"),
        staged(2, 1, "invalid", None),
        staged(2, 2, "valid", None),
        staged(2, 1, "valid", "faq"),
    ]
    figures = compare.attempt_figures(attempts)
    assert figures.items_tried == 3
    assert figures.first_try_validity == round(1 / 3, 4)
    assert figures.repairs_per_item == round(2 / 3, 4)  # one repair of main, one of a stage


def test_no_attempt_yet_gives_nulls() -> None:
    figures = compare.attempt_figures([])
    assert figures == compare.Figures(0, None, None, None, None, 0)


@pytest.mark.parametrize(
    ("values", "p50", "p95"),
    [
        ([float(v) for v in range(1, 101)], 50.0, 95.0),
        ([10.0], 10.0, 10.0),
        ([300.0, 100.0, 200.0], 200.0, 300.0),
        ([1.0, 2.0, 3.0, 4.0], 2.0, 4.0),
    ],
)
def test_nearest_rank_percentiles(values: list[float], p50: float, p95: float) -> None:
    assert compare.percentile(values, 50) == p50
    assert compare.percentile(values, 95) == p95


def test_latency_percentiles_of_every_call() -> None:
    attempts = [attempt(i, 1, "valid", latency=float(10 * (i + 1))) for i in range(20)]
    figures = compare.attempt_figures(attempts)
    assert (figures.latency_p50, figures.latency_p95) == (100.0, 190.0)


def test_cost_per_valid_item() -> None:
    assert compare.cost_per_valid_item(0.003, 3) == 0.001
    assert compare.cost_per_valid_item(0.003, 0) is None


def test_judge_score_is_the_mean_of_the_items_means_and_null_without_scores() -> None:
    items = [
        {"index": 0, "judge": {"scores": {"accuracy": 4, "style": 2}}},
        {"index": 1, "judge_scores": {"accuracy": 5}},
        {"index": 2},
    ]
    assert compare.judge_score(items) == 4.0
    assert compare.judge_score([{"index": 0, "data": {}}]) is None


def row(status: str, validity: float | None, cost: float | None, p50: float | None = 100.0) -> dict[str, Any]:
    return {
        "status": status,
        "first_try_validity": validity,
        "cost_per_valid_item_usd": cost,
        "latency_ms": {"p50": p50},
        "job_id": f"j{validity}{cost}{p50}",
    }


def test_no_winner_while_a_job_runs() -> None:
    rows = [row("completed", 1.0, 0.1), row("running", 0.2, 0.1)]
    assert compare.overall_status(rows) == "running"
    assert compare.winner(rows) is None


def test_winner_highest_validity_then_lowest_cost_then_latency_then_order() -> None:
    a, b, c = row("completed", 0.8, 0.001), row("completed", 0.9, 0.005), row("completed", 0.9, 0.002)
    assert compare.winner([a, b, c]) is c
    d, e = row("completed", 0.9, 0.002, p50=90.0), row("completed", 0.9, 0.002, p50=80.0)
    assert compare.winner([d, e]) is e
    f, g = row("completed", 0.5, None), row("completed", 0.5, None)
    assert compare.winner([f, g]) is f


def test_only_completed_jobs_can_win() -> None:
    failed, done = row("failed", 1.0, 0.0), row("completed", 0.1, 0.9)
    assert compare.overall_status([failed, done]) == "incomplete"
    assert compare.winner([failed, done]) is done
    assert compare.winner([failed, row("cancelled", 1.0, 0.0)]) is None
    assert compare.overall_status([done, done]) == "completed"


def test_model_row_from_a_history_answer() -> None:
    history = {
        "status": "completed",
        "requested": 2,
        "counts": {"succeeded": 2, "rejected": 0},
        "usage": {"prompt_tokens": 40, "completion_tokens": 10, "cost_usd": 0.004},
        "attempts": {
            "items": [
                attempt(0, 1, "valid", 50.0),
                attempt(1, 1, "invalid", 70.0),
                attempt(1, 2, "valid", 90.0),
            ]
        },
    }
    items = [{"index": 0, "data": {"a": 1}, "attempts": 1}, {"index": 1, "data": {"a": 2}, "attempts": 2}]
    out = compare.model_row({"id": "m1"}, "j1", history, items, items_total=2, shown=1)
    assert out["first_try_validity"] == 0.5
    assert out["repairs_per_item"] == 0.5
    assert out["cost_per_valid_item_usd"] == 0.002
    assert out["latency_ms"] == {"p50": 70.0, "p95": 90.0, "calls": 3}
    assert out["usage"] == {"prompt_tokens": 40, "completion_tokens": 10, "cost_usd": 0.004}
    assert out["items"] == [{"index": 0, "data": {"a": 1}, "attempts": 1}]
    assert (out["items_total"], out["judge_score"], out["model"]) == (2, None, {"provider": None, "id": "m1"})


def test_start_body_keeps_template_variables_and_validation() -> None:
    record = {
        "template_id": "t1",
        "variables": {"x": 1},
        "options": {"validation_mode": "strict", "max_attempts_per_item": 4, "dedup": True},
    }
    body = compare.start_body(record, {"id": "m2", "provider": "openrouter"})
    assert body == {
        "template_id": "t1",
        "model": {"id": "m2", "provider": "openrouter"},
        "variables": {"x": 1},
        "validation_mode": "strict",
        "max_attempts_per_item": 4,
        "dedup": True,
    }
    assert "count" not in body
