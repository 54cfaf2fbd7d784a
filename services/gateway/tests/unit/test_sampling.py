"""The sampled estimate's arithmetic: cost per valid item (rejected items' and repairs' calls included) × N, a range
from the spread of the sample's item costs, nothing without a valid item; the sample job is the job cut to k."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from llmts_common.contracts import GenerationRequested
from llmts_gateway.sampling import extrapolate, sample_command


def view(valid: int, cost: float, calls: int, rejected: int = 0) -> dict[str, object]:
    return {
        "job_id": "s1",
        "status": "completed" if not rejected else "completed_with_errors",
        "requested": valid + rejected,
        "counts": {"succeeded": valid, "rejected": rejected, "attempts": calls},
        "usage": {"prompt_tokens": 100, "completion_tokens": 50, "cost_usd": cost},
    }


def test_cost_per_valid_item_times_n_with_a_range() -> None:
    out = extrapolate(view(4, 0.004, 6, rejected=1), [0.0008, 0.0008, 0.0008, 0.0008], 100)
    assert out["method"] == "sample"
    assert out["total"]["expected"] == pytest.approx(
        0.1
    )  # 0.004 / 4 valid × 100: the rejected item's cost counts
    assert out["total"]["low"] == out["total"]["high"] == pytest.approx(0.1)  # no spread
    assert out["calls_per_item"] == 1.5
    assert out["sample"]["rejected"] == 1
    spread = extrapolate(view(4, 0.004, 4), [0.0005, 0.0015, 0.0005, 0.0015], 100)
    assert spread["total"]["low"] < 0.1 < spread["total"]["high"]
    assert spread["total"]["low"] >= 0


def test_no_valid_item_no_figure() -> None:
    out = extrapolate(view(0, 0.002, 3, rejected=2), [], 100)
    assert out["total"] is None
    assert out["per_item"] is None
    assert out["sample"]["cost_usd"] == 0.002


def test_the_sample_is_the_job_cut_to_k_items_answered_afresh() -> None:
    command = GenerationRequested.model_validate(
        {
            "job_id": "j",
            "user_id": "u",
            "count": 200,
            "requested_at": datetime.now(UTC).isoformat(),
            "model": {"id": "openai/gpt-4o-mini"},
            "template": {"id": "t", "version": 1, "name": "n", "owner_id": "u", "prompts": {"user": "x"}},
        }
    )
    sample = sample_command(command, None, "s1")
    assert (sample.job_id, sample.count, sample.cache) == ("s1", 5, "refresh")
    assert sample_command(command, 12, "s2").count == 12
    assert sample_command(command.model_copy(update={"count": 3}), None, "s3").count == 3
    assert sample.template == command.template
