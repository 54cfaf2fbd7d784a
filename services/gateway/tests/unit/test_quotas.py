"""Per-user quotas and budgets: the domain rules (``domain.quotas``) and admission through the handlers, on the
in-memory ledger of ``services/gateway/tests/fakes.py``."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from services.gateway.tests.fakes import NOW, Fakes

from llmts_api.generation import BatchCreate, GenerationAccepted, GenerationCreate
from llmts_api.usage import QuotaOverride
from llmts_common.contracts import GenerationCancelled, GenerationCompleted, GenerationFailed, Usage
from llmts_common.errors import PayloadTooLarge
from llmts_gateway import handlers
from llmts_gateway.domain import quotas
from llmts_gateway.domain.quotas import Ask, BudgetExceeded, Ledger, Limits, QuotaExceeded, Reservation

PRICED = {"prompt": 0.15, "completion": 0.6}
LIMITS = Limits(max_items_per_job=50, max_active_jobs=3, max_items_per_day=100, budget_usd=0.06)


@pytest.fixture
def f() -> Fakes:
    fakes = Fakes(max_count=1000, quota=LIMITS)
    fakes.templates.add("tpl1")
    fakes.catalog.add("openai/gpt-4o-mini", pricing=PRICED)
    fakes.catalog.add("local/free", provider="ollama", pricing={"prompt": 0, "completion": 0})
    fakes.catalog.add("local/unpriced", provider="ollama", pricing=None)
    return fakes


def create(**fields: Any) -> GenerationCreate:
    return GenerationCreate.model_validate({"template_id": "tpl1", **fields})


async def submit(f: Fakes, user: str = "alice", **fields: Any) -> str:
    outcome = await handlers.create_or_preview(create(**fields), user_id=user, token=user, deps=f.deps)
    assert isinstance(outcome, GenerationAccepted)
    return outcome.job_id


async def ledger(f: Fakes, user: str = "alice") -> Ledger:
    return await f.usage.ledger(user, defaults=LIMITS, now=f.now)


# ------------------------------------------------------------------------------------------------ domain
def test_periods_start_and_reset_in_utc() -> None:
    now = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)  # a Thursday
    assert quotas.period_resets_at(now, "month") == datetime(2027, 1, 1, tzinfo=UTC)
    assert quotas.period_resets_at(now, "day") == datetime(2027, 1, 1, tzinfo=UTC)
    assert quotas.period_start(now, "week") == datetime(2026, 12, 28, tzinfo=UTC)
    assert quotas.period_resets_at(now, "week") == datetime(2027, 1, 4, tzinfo=UTC)
    assert quotas.period_key(now, "month") == "month:2026-12-01"


def test_a_free_job_ignores_the_budget_but_not_the_items() -> None:
    over = Ledger("u", spent_micros=10 * quotas.MICROS)
    free = Ask((Reservation("j", 0, 10),))
    assert quotas.refusal(over, free, LIMITS, NOW) is None
    many = Ask((Reservation("j", 0, 101),))
    problem = quotas.refusal(over, many, LIMITS, NOW)
    assert isinstance(problem, QuotaExceeded)
    assert problem.status_code == 429
    assert problem.details["limit"] == "items_per_day"


def test_the_budget_refusal_says_what_is_used_and_left() -> None:
    ledger = Ledger("u", spent_micros=30_000, reserved_micros=10_000)
    problem = quotas.refusal(ledger, Ask((Reservation("j", 30_000, 1),)), LIMITS, NOW)
    assert isinstance(problem, BudgetExceeded)
    assert (problem.status_code, problem.code) == (402, "budget_exceeded")
    assert problem.details == {
        "limit": "budget_usd",
        "used": 0.04,
        "requested": 0.03,
        "remaining": 0.02,
        "period_resets_at": "2027-01-01T00:00:00Z",
    }
    assert quotas.refusal(ledger, Ask((Reservation("j", 20_000, 1),)), LIMITS, NOW) is None  # exactly fits


def test_roll_over_clears_spend_and_items_but_keeps_open_reservations() -> None:
    held = Reservation("j", 5_000, 7, day=quotas.day_key(NOW))
    ledger = quotas.rolled_over(Ledger("u"), NOW, "month")
    ledger = quotas.admitted(ledger, Ask((held,)))
    ledger = quotas.settled(ledger, quotas.Settlement("x", Reservation("x", 0, 0), 9_000, 0))
    next_month = datetime(2027, 1, 2, tzinfo=UTC)
    rolled = quotas.rolled_over(ledger, next_month, "month")
    assert (rolled.spent_micros, rolled.reserved_micros, rolled.day_items) == (0, 5_000, 0)
    change = quotas.settlement(rolled, "j", cost_usd=0.001, produced=2)
    assert change is not None
    assert change.items_back == 0  # admitted on another day: today's count is not given back
    same_day = quotas.settlement(ledger, "j", cost_usd=0.001, produced=2)
    assert same_day is not None
    assert same_day.items_back == 5


# ------------------------------------------------------------------------------------------------ admission
async def test_a_priced_job_reserves_its_upper_cost_and_is_capped_by_it(f: Fakes) -> None:
    job = await submit(f, count=10)
    command = f.commands.enqueued[0][0]
    held = (await ledger(f)).jobs[job]
    assert held.micros == handlers.reservation_micros(command, PRICED) > 0
    assert command.max_cost_usd == quotas.to_usd(held.micros)  # the generator stops at the reservation
    assert (await ledger(f)).day_items == 10


async def test_the_request_max_cost_caps_the_reservation(f: Fakes) -> None:
    job = await submit(f, count=10, max_cost_usd=0.001)
    assert (await ledger(f)).jobs[job].micros == 1_000


async def test_a_job_over_the_budget_is_refused_with_402_and_nothing_is_accepted(f: Fakes) -> None:
    await submit(f, count=10)
    await submit(f, count=10)
    before = await ledger(f)
    with pytest.raises(BudgetExceeded) as info:
        await submit(f, count=10)
    assert info.value.details["limit"] == "budget_usd"
    assert info.value.details["remaining"] == quotas.to_usd(LIMITS.budget_micros - before.committed_micros)
    assert len(f.commands.enqueued) == 2
    assert await ledger(f) == before
    await submit(f, "bob", count=10)  # another user's budget is their own


async def test_free_and_unpriced_models_reserve_nothing_and_count_items(f: Fakes) -> None:
    spent = replace(quotas.rolled_over(Ledger("alice"), NOW, "month"), spent_micros=LIMITS.budget_micros)
    f.usage.ledgers["alice"] = spent  # this month's budget is used up
    a = await submit(f, count=40, model={"id": "local/free"})
    b = await submit(f, count=40, model={"id": "local/unpriced"})
    current = await ledger(f)
    assert (current.jobs[a].micros, current.jobs[b].micros, current.day_items) == (0, 0, 80)
    with pytest.raises(QuotaExceeded) as info:
        await submit(f, count=21, model={"id": "local/free"})
    assert info.value.status_code == 429
    assert info.value.details == {
        "limit": "items_per_day",
        "used": 80,
        "requested": 21,
        "remaining": 20,
        "period_resets_at": "2026-12-07T00:00:00Z",
    }
    with pytest.raises(BudgetExceeded):
        await submit(f, count=1)


async def test_items_per_job_and_active_jobs_are_429(f: Fakes) -> None:
    with pytest.raises(QuotaExceeded) as info:
        await submit(f, count=51, model={"id": "local/free"})
    assert info.value.details["limit"] == "items_per_job"
    for _ in range(3):
        await submit(f, count=1, model={"id": "local/free"})
    with pytest.raises(QuotaExceeded) as info:
        await submit(f, count=1, model={"id": "local/free"})
    assert (info.value.details["limit"], info.value.details["remaining"]) == ("active_jobs", 0)


async def test_a_dry_run_reserves_nothing(f: Fakes) -> None:
    await handlers.create_or_preview(
        create(count=50, dry_run=True), user_id="alice", token="alice", deps=f.deps
    )
    assert (await ledger(f)).active_jobs == 0


async def test_a_batch_is_admitted_all_or_nothing(f: Fakes) -> None:
    body = BatchCreate(jobs=[create(count=30, model={"id": "local/free"}) for _ in range(4)])
    with pytest.raises(QuotaExceeded) as info:
        await handlers.submit_batch(body, user_id="alice", token="alice", deps=f.deps)
    assert info.value.details["limit"] == "active_jobs"
    assert f.commands.enqueued == []
    assert (await ledger(f)).active_jobs == 0
    body = BatchCreate(jobs=[create(count=30, model={"id": "local/free"}) for _ in range(3)])
    accepted = await handlers.submit_batch(body, user_id="alice", token="alice", deps=f.deps)
    assert len(accepted.jobs) == 3
    assert (await ledger(f)).day_items == 90


# ------------------------------------------------------------------------------------------------ settling
def ended(kind: str, job_id: str, cost: float, succeeded: int) -> Any:
    usage = Usage(prompt_tokens=10, completion_tokens=10, cost_usd=cost)
    if kind == "completed":
        return GenerationCompleted(
            job_id=job_id,
            user_id="alice",
            status="completed",
            requested=10,
            succeeded=succeeded,
            rejected=0,
            attempts=succeeded,
            usage=usage,
            duration_seconds=1.0,
        )
    if kind == "failed":
        return GenerationFailed(
            job_id=job_id, user_id="alice", code="x", reason="y", succeeded=succeeded, usage=usage
        )
    return GenerationCancelled(job_id=job_id, user_id="alice", succeeded=succeeded, usage=usage)


@pytest.mark.parametrize("kind", ["completed", "failed", "cancelled"])
async def test_the_end_of_a_job_settles_to_its_cost_once(f: Fakes, kind: str) -> None:
    job = await submit(f, count=10)
    assert await handlers.settle_job(ended(kind, job, 0.004, 6), deps=f.deps) is True
    after = await ledger(f)
    assert (after.spent_micros, after.reserved_micros, after.active_jobs, after.day_items) == (4_000, 0, 0, 6)
    assert await handlers.settle_job(ended(kind, job, 0.004, 6), deps=f.deps) is False
    assert await ledger(f) == after
    assert await handlers.settle_job(ended(kind, "unknown", 1.0, 1), deps=f.deps) is False


async def test_settling_frees_the_budget_for_the_next_job(f: Fakes) -> None:
    first = await submit(f, count=10)
    await submit(f, count=10)
    with pytest.raises(BudgetExceeded):
        await submit(f, count=10)
    await handlers.settle_job(ended("completed", first, 0.001, 10), deps=f.deps)
    await submit(f, count=10)


async def test_a_new_month_restores_the_budget(f: Fakes) -> None:
    for _ in range(2):
        job = await submit(f, count=10)
        await handlers.settle_job(ended("completed", job, 0.02, 10), deps=f.deps)
    with pytest.raises(BudgetExceeded) as info:
        await submit(f, count=10)
    f.now = datetime.fromisoformat(info.value.details["period_resets_at"]) + timedelta(seconds=1)
    await submit(f, count=10)


# ------------------------------------------------------------------------------------------------ views, admin
async def test_overrides_change_the_limits_and_usage_shows_them(f: Fakes) -> None:
    job = await submit(f, count=10)
    quota = await handlers.set_quota("alice", QuotaOverride(budget_usd=10.0, max_active_jobs=1), deps=f.deps)
    assert (quota.effective.budget_usd, quota.effective.max_active_jobs) == (10.0, 1)
    assert quota.effective.max_items_per_day == LIMITS.max_items_per_day
    with pytest.raises(QuotaExceeded):
        await submit(f, count=10)
    usage = await handlers.my_usage("alice", deps=f.deps)
    assert usage.limits.budget_usd == 10.0
    assert (usage.active_jobs.used, usage.active_jobs.remaining, usage.items_today.used) == (1, 0, 10)
    assert [o.job_id for o in usage.open_jobs] == [job]
    assert usage.budget.reserved_usd == usage.budget.used > 0
    cleared = await handlers.set_quota("alice", QuotaOverride(), deps=f.deps)
    assert cleared.effective.budget_usd == LIMITS.budget_usd
    assert cleared.overrides == QuotaOverride()


# ------------------------------------------------------------------------------------------------ size cap
async def test_a_command_over_the_size_cap_is_413_before_any_reservation() -> None:
    f = Fakes(max_count=1000, quota=LIMITS, max_command_bytes=50_000)
    f.templates.add("tpl1", prompts={"system": "s" * 40_000, "user": "u"})
    f.catalog.add("openai/gpt-4o-mini", pricing=PRICED)
    with pytest.raises(PayloadTooLarge) as info:
        await submit(f, count=1, tasks=[{"text": "t" * 20_000}])
    assert info.value.status_code == 413
    assert info.value.details["limit"] == 50_000
    assert info.value.details["size"] > 50_000
    assert f.commands.enqueued == []
    assert (await ledger(f)).active_jobs == 0
    await submit(f, count=1)  # the template alone fits


async def test_a_parked_command_gives_back_everything_its_admission_reserved(f: Fakes) -> None:
    job = await submit(f, count=10)
    held = await ledger(f)
    assert (held.active_jobs, held.day_items) == (1, 10)
    assert held.reserved_micros > 0
    command = await f.commands.accepted_generation(job)
    assert command is not None
    assert await handlers.release_undeliverable(command, deps=f.deps) is True  # the outbox's park hook
    after = await ledger(f)
    assert (after.spent_micros, after.reserved_micros, after.active_jobs, after.day_items) == (0, 0, 0, 0)
    assert await handlers.release_undeliverable(command, deps=f.deps) is False  # idempotent


async def test_reading_a_parked_job_releases_it_when_the_park_hook_never_ran(f: Fakes) -> None:
    job = await submit(f, count=10)
    f.commands.parked[job] = "over the Kafka message limit"
    view = await handlers.job_status(job, user_id="alice", token="alice", deps=f.deps)
    assert view.body["status"] == "failed"
    after = await ledger(f)
    assert (after.reserved_micros, after.active_jobs, after.day_items) == (0, 0, 0)
