"""Cost reconciliation and prompt caching in the generator's documents: which attempts are marked for a lookup in
the provider's books, the deterministic sample, the history's reported vs reconciled totals and spend per kind."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from llmts_common.contracts import GenerationRequested
from llmts_generator.domain.costs import (
    DONE,
    DUE,
    SAMPLE,
    cost_summary,
    sample_point,
    sample_threshold,
    spend_by_kind,
)
from llmts_generator.domain.requests import RequestShape
from llmts_generator.domain.scheduling import SlotPlan
from llmts_generator.records import CallRecord, JobRef, attempt_doc
from llmts_providers import ChatResult, OpenRouterProvider
from llmts_providers.errors import ProviderTimeout

NOW = datetime(2026, 12, 7, tzinfo=UTC)
JOB = JobRef("job1", "u1", 1)


def result(
    *, cost: float = 0.001, reported: bool = True, cached: int = 0, gen: str | None = "gen-1"
) -> ChatResult:
    return ChatResult(
        text="{}",
        finish_reason="stop",
        prompt_tokens=100,
        completion_tokens=20,
        cached_tokens=cached,
        cost_usd=cost,
        cost_reported=reported,
        model="openai/gpt-4o-mini",
        provider="openrouter",
        generation_id=gen,
    )


def doc(
    res: ChatResult | None,
    error: ProviderTimeout | None = None,
    *,
    provider: str = "openrouter",
    call_no: int = 1,
    kind: str = "first",
) -> dict[str, Any]:
    call = CallRecord(call_no, 1, kind, 2, res, error, NOW, 10.0)
    return attempt_doc(JOB, SlotPlan(0, 0), call, model_id="openai/gpt-4o-mini", provider=provider)


def test_attempts_whose_usage_is_missing_cut_or_cached_are_due() -> None:
    assert doc(result(reported=False))["reconcile_reason"] == "missing"
    assert doc(result(cached=80))["reconcile_reason"] == "cached"
    cut = ProviderTimeout("idle timeout", "openrouter")
    cut.generation_id = "gen-cut"
    marked = doc(None, cut)
    assert marked["generation_id"] == "gen-cut"
    assert marked["reconcile"] == DUE
    assert marked["reconcile_reason"] == "cut"
    assert marked["reconcile_after"] == NOW


def test_other_attempts_are_in_the_sample_pool_and_unreconcilable_ones_unmarked() -> None:
    plain = doc(result())
    assert plain["reconcile"] == SAMPLE
    assert plain["reconcile_point"] == sample_point(plain["_id"])
    assert plain["cached_tokens"] == 0
    assert "reconcile" not in doc(result(gen=None))  # a cache hit: no generation
    assert "reconcile" not in doc(None, ProviderTimeout("first-token timeout", "openrouter"))
    assert "reconcile" not in doc(result(reported=False), provider="ollama")


def test_the_sample_is_deterministic_and_about_its_rate() -> None:
    points = [sample_point(f"job1:{i}:1") for i in range(10_000)]
    assert points == [sample_point(f"job1:{i}:1") for i in range(10_000)]
    picked = sum(p < sample_threshold(0.02) for p in points)
    assert 150 < picked < 250
    assert sample_threshold(0) == 0
    assert sample_threshold(1) == 10_000


def test_history_costs_reported_vs_reconciled_and_spend_per_kind() -> None:
    first = {**doc(result(cost=0.0, reported=False)), "reconcile": DONE, "reconciled_cost_usd": 0.004}
    repair = doc(result(cost=0.002), kind="repair", call_no=2)
    retry = {**doc(result(cost=0.001), kind="retry", call_no=3), "reconcile_point": 10_000}
    cached = {
        **doc(result(cost=0.001, cached=80), call_no=4),
        "reconcile": DONE,
        "reconciled_cost_usd": 0.001,
        "cache_saved_usd": 0.0003,
    }
    repair["reconcile_point"] = 0
    summary = cost_summary([first, repair, retry, cached], threshold=200)
    assert summary["reported_cost_usd"] == 0.004
    assert summary["reconciled_cost_usd"] == 0.008
    assert summary["difference_usd"] == 0.004
    assert summary["attempts"] == {
        "reconciled": 2,
        "pending": 1,  # the repair: sampled, not looked up yet
        "sampled_out": 1,
        "gone": 0,
        "not_reconcilable": 0,
    }
    assert summary["prompt_cache"] == {"cached_tokens": 80, "cache_write_tokens": 0, "saved_usd": 0.0003}
    kinds = spend_by_kind([first, repair, retry, cached])
    assert kinds["first"]["calls"] == 2
    assert kinds["first"]["cost_usd"] == 0.001
    assert kinds["first"]["best_cost_usd"] == 0.005
    assert kinds["repair"]["cost_usd"] == 0.002
    assert kinds["retry"]["best_cost_usd"] == 0.001


def test_job_requests_ask_for_a_cache_breakpoint_on_the_shared_head() -> None:
    req = GenerationRequested.model_validate(
        {
            "job_id": "j",
            "user_id": "u",
            "count": 1,
            "requested_at": NOW.isoformat(),
            "model": {"id": "anthropic/claude-3.5-haiku"},
            "template": {
                "id": "t",
                "version": 1,
                "name": "reviews",
                "owner_id": "u",
                "prompts": {"system": "Write reviews.", "user": "Review {{ index }}."},
            },
        }
    )
    shape = RequestShape.of(req, "anthropic/claude-3.5-haiku")
    request = shape.request([("system", "Write reviews."), ("user", "Review 1.")])
    assert request.cache_prompt is True
    body = OpenRouterProvider(api_key="k").build_request_body(request)
    assert body["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert body["messages"][1]["content"] == "Review 1."
