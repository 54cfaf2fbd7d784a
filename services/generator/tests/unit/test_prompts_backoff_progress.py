"""Repair prompts (bounded), backoff honouring Retry-After, progress throttle/ETA, schema strictness."""

from __future__ import annotations

import random

import pytest

from llmts_generator.domain.backoff import BackoffPolicy
from llmts_generator.domain.progress import ProgressThrottle, RateEstimator, eta_seconds, projected_cost
from llmts_generator.domain.repair import (
    MAX_ERRORS,
    error_summary,
    first_messages,
    repair_instruction,
    repair_messages,
)
from llmts_generator.domain.schema import is_strict_compatible


def errors(n: int) -> list[dict[str, str]]:
    return [{"path": f"$.f{i}", "rule": "type", "message": f"f{i} must be a string"} for i in range(n)]


class TestRepair:
    def test_first_messages(self) -> None:
        assert first_messages("sys", "user") == [("system", "sys"), ("user", "user")]
        assert first_messages("  ", "user") == [("user", "user")]

    def test_repair_contains_previous_answer_and_errors(self) -> None:
        msgs = repair_messages("sys", "make one", '{"f0": 1}', errors(2))
        assert [r for r, _ in msgs] == ["system", "user", "assistant", "user"]
        assert msgs[2][1] == '{"f0": 1}'
        assert "$.f0: f0 must be a string [type]" in msgs[3][1]
        assert "$.f1" in msgs[3][1]

    def test_only_the_first_few_errors(self) -> None:
        text = repair_instruction(errors(50))
        assert text.count("must be a string") == MAX_ERRORS
        assert f"and {50 - MAX_ERRORS} more" in text

    def test_bounded_whatever_the_history(self) -> None:
        huge = "x" * 100_000
        msgs = repair_messages("s", "u", huge, errors(1000))
        total = sum(len(c) for _, c in msgs)
        assert total < 4000 + 3000  # clipped answer + a few errors
        assert len(msgs) == 4  # never a growing transcript

    def test_duplicate_wording(self) -> None:
        msgs = repair_messages("s", "u", '{"a":1}', [], duplicate=True)
        assert "identical to an item that was already generated" in msgs[-1][1]

    def test_text_format(self) -> None:
        assert "corrected text" in repair_instruction(errors(1), output_format="text")

    def test_empty_previous(self) -> None:
        assert repair_messages("s", "u", None, errors(1))[2][1] == "(empty answer)"

    def test_error_summary_is_json_safe_and_bounded(self) -> None:
        out = error_summary([{"path": "$", "rule": "x", "message": "m", "value_excerpt": object()}] * 30)
        assert len(out) == 20
        assert isinstance(out[0]["value_excerpt"], str)


class TestBackoff:
    def test_exponential_with_jitter_and_cap(self) -> None:
        p = BackoffPolicy(base_s=1.0, cap_s=8.0)
        rng = random.Random(3)
        for retry, upper in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (10, 8.0)):
            d = p.delay(retry, rng=rng)
            assert upper / 2 <= d <= upper

    def test_honours_retry_after(self) -> None:
        p = BackoffPolicy(base_s=0.1, cap_s=1.0)
        for _ in range(50):
            d = p.delay(1, retry_after=3.0)
            assert 3.0 <= d <= 3.3

    def test_retry_after_is_capped(self) -> None:
        p = BackoffPolicy(max_retry_after_s=5.0)
        assert p.delay(1, retry_after=3600) <= 5.5

    def test_should_retry(self) -> None:
        p = BackoffPolicy(max_retries=2)
        assert p.should_retry(1)
        assert p.should_retry(2)
        assert not p.should_retry(3)


class TestProgress:
    def test_throttle_at_most_four_per_second(self) -> None:
        t = ProgressThrottle(0.25)
        emitted = sum(t.try_emit(i * 0.01) for i in range(300))  # 3 s of calls every 10 ms
        assert emitted <= 4 * 3 + 1

    def test_rate_and_eta(self) -> None:
        r = RateEstimator()
        r.start(0.0)
        for i in range(1, 11):
            r.record(i * 0.5)  # 2 items / s
        rate = r.rate(5.0)
        assert rate == pytest.approx(2.0)
        assert eta_seconds(10, rate) == pytest.approx(5.0)
        assert eta_seconds(0, None) == 0.0
        assert eta_seconds(5, None) is None

    def test_rate_falls_back_to_average(self) -> None:
        r = RateEstimator()
        r.start(0.0)
        r.record(1.0)
        assert r.rate(2.0) == pytest.approx(0.5)

    def test_projected_cost(self) -> None:
        assert projected_cost(10, 0, 0.5) is None
        assert projected_cost(10, 5, 0.5) == pytest.approx(1.0)
        assert projected_cost(10, 10, 0.5) == pytest.approx(0.5)


class TestStrictSchema:
    def test_strict_compatible(self) -> None:
        schema = {
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "array", "items": {"type": "integer"}}},
            "required": ["a", "b"],
            "additionalProperties": False,
        }
        assert is_strict_compatible(schema)

    @pytest.mark.parametrize(
        "schema",
        [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"type": "object", "properties": {"a": {}}, "required": [], "additionalProperties": False},
            {
                "type": "object",
                "properties": {"a": {"type": "object", "properties": {"x": {}}}},
                "required": ["a"],
                "additionalProperties": False,
            },
        ],
    )
    def test_not_strict(self, schema: dict[str, object]) -> None:
        assert not is_strict_compatible(schema)
