"""A new round of a finished job through the gateway (``handlers.reopen``) on in-memory fakes: which jobs may take
which round (409 otherwise), the per-job item bound, the quota admission under the round's own reservation, the
command sent, and the settlement of the round's terminal event against that reservation."""

from __future__ import annotations

from typing import Any

import pytest
from services.gateway.tests.fakes import Fakes

from llmts_common.contracts import GenerationCompleted, GenerationReopenRequested, Usage
from llmts_common.errors import Conflict, NotFound, Unprocessable
from llmts_gateway import handlers
from llmts_gateway.domain import quotas, rounds

LIMITS = quotas.Limits(max_items_per_job=50, max_active_jobs=5, max_items_per_day=1000, budget_usd=1.0)


def _job(f: Fakes, status: str, succeeded: int, requested: int = 10, rejected: int = 0, **extra: Any) -> None:
    counts = {"requested": requested, "succeeded": succeeded, "rejected": rejected}
    f.generator.put("j1", "alice", status=status, requested=requested, counts=counts, **extra)


@pytest.mark.parametrize(
    ("status", "succeeded", "rejected", "kind", "code"),
    [
        ("running", 3, 0, "resume", "job_not_finished"),
        ("completed", 10, 0, "resume", "job_not_reopenable"),
        ("cancelled", 10, 0, "resume", "nothing_missing"),
        ("stopped", 4, 0, "retry_rejected", "nothing_rejected"),
    ],
)
async def test_a_round_the_job_cannot_take_is_409(
    status: str, succeeded: int, rejected: int, kind: str, code: str
) -> None:
    f = Fakes(max_count=100)
    _job(f, status, succeeded, rejected=rejected)
    with pytest.raises(Conflict) as info:
        await handlers.reopen("j1", kind, user_id="alice", token="alice", deps=f.deps)  # type: ignore[arg-type]
    assert info.value.code == code
    assert f.commands.enqueued == []


async def test_another_users_job_is_404_and_extend_beyond_the_max_is_422() -> None:
    f = Fakes(max_count=12)
    _job(f, "completed", 10)
    with pytest.raises(NotFound):
        await handlers.reopen("j1", "extend", count=1, user_id="bob", token="bob", deps=f.deps)
    with pytest.raises(Unprocessable):
        await handlers.reopen("j1", "extend", count=3, user_id="alice", token="alice", deps=f.deps)
    assert f.commands.enqueued == []


async def test_extend_reserves_the_round_and_sends_the_command() -> None:
    f = Fakes(max_count=100, quota=LIMITS)
    _job(f, "completed", 10, usage={"cost_usd": 0.02}, round=1)

    accepted = await handlers.reopen("j1", "extend", count=5, user_id="alice", token="alice", deps=f.deps)

    assert (accepted.round, accepted.items, accepted.kind, accepted.status) == (2, 5, "extend", "queued")
    [command] = f.commands.of_type(GenerationReopenRequested)
    assert (command.job_id, command.kind, command.count) == ("j1", "extend", 5)
    # the job's cost per item (0.002) × 5 items × 1.5 = 0.015, which caps the round
    assert command.max_cost_usd == pytest.approx(0.015)
    ledger = await f.usage.ledger("alice", defaults=LIMITS, now=f.now)
    assert ledger.jobs["j1_r2"].items == 5

    ended = GenerationCompleted(
        job_id="j1",
        user_id="alice",
        status="completed",
        requested=15,
        succeeded=15,
        rejected=0,
        attempts=15,
        usage=Usage(cost_usd=0.03),
        duration_seconds=1.0,
        round=2,
        round_succeeded=5,
        round_cost_usd=0.01,
    )
    assert await handlers.settle_job(ended, deps=f.deps)
    ledger = await f.usage.ledger("alice", defaults=LIMITS, now=f.now)
    assert "j1_r2" not in ledger.jobs
    assert ledger.spent_micros == 10_000  # the round's cost, not the job's total


async def test_a_round_over_the_items_per_job_quota_is_refused() -> None:
    f = Fakes(max_count=500, quota=LIMITS)
    _job(f, "completed", 10)
    with pytest.raises(quotas.QuotaExceeded):
        await handlers.reopen("j1", "extend", count=60, user_id="alice", token="alice", deps=f.deps)
    assert f.commands.enqueued == []


def test_the_round_estimate_and_keys() -> None:
    job = {"usage": {"cost_usd": 0.5}, "counts": {"succeeded": 10}}
    assert rounds.estimate_micros(job, 4, None) == 300_000
    assert rounds.estimate_micros(job, 4, 0.1) == 100_000
    assert rounds.estimate_micros({"usage": {"cost_usd": 0.0}, "counts": {"succeeded": 3}}, 4, None) == 0
    assert rounds.reservation_key("j1", 1) == "j1"
    assert rounds.reservation_key("j1", 3) == "j1_r3"
