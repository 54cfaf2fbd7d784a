"""The Mongo quota ledger (``adapters.usage``) against the local MongoDB-wire server: exact under concurrent
admissions, idempotent settlement, all-or-nothing batches, state that survives a new ledger instance."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from llmts_common.mongo import Collection, create_client
from llmts_gateway.adapters.usage import MongoUsageLedger
from llmts_gateway.domain import quotas
from llmts_gateway.domain.quotas import Ask, BudgetExceeded, Limits, QuotaExceeded, Reservation

MONGO_URL = "mongodb://127.0.0.1:27017"
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LIMITS = Limits(max_items_per_job=1000, max_active_jobs=100, max_items_per_day=100_000, budget_usd=5.0)
DOLLAR = quotas.MICROS


@pytest.fixture
async def collection() -> AsyncIterator[Collection]:
    client = create_client(MONGO_URL)
    name = f"llmts_test_usage_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name]["usage"]
    finally:
        await client.drop_database(name)
        await client.close()


class SlowLedger(MongoUsageLedger):
    """Waits between reading the ledger and the conditional update, so concurrent admissions all read the same
    counters first: only the update's guard can keep them within the limits."""

    async def _current(self, user_id: str, defaults: Limits, now: datetime) -> tuple[quotas.Ledger, Limits]:
        found = await super()._current(user_id, defaults, now)
        await asyncio.sleep(0.2)
        return found


def ask(*job_ids: str, micros: int = DOLLAR, items: int = 10) -> Ask:
    return Ask(tuple(Reservation(j, micros, items, at=NOW) for j in job_ids))


async def test_twenty_concurrent_admissions_against_a_budget_for_five(collection: Collection) -> None:
    ledgers = [SlowLedger(collection) for _ in range(4)]  # four "replicas" on one collection

    async def admit(i: int) -> bool:
        try:
            await ledgers[i % 4].reserve("alice", ask(f"job{i}"), defaults=LIMITS, now=NOW)
        except BudgetExceeded:
            return False
        return True

    results = await asyncio.gather(*(admit(i) for i in range(20)))
    assert sum(results) == 5
    ledger = await ledgers[0].ledger("alice", defaults=LIMITS, now=NOW)
    assert (ledger.reserved_micros, ledger.active_jobs, ledger.day_items, len(ledger.jobs)) == (
        5 * DOLLAR,
        5,
        50,
        5,
    )
    doc = await collection.find_one({"_id": "alice"})
    assert doc is not None
    assert doc["committed_micros"] == 5 * DOLLAR


async def test_concurrent_admissions_never_pass_the_active_jobs_limit(collection: Collection) -> None:
    limits = Limits(max_items_per_job=10, max_active_jobs=3, max_items_per_day=1000, budget_usd=0)
    ledger = SlowLedger(collection)

    async def admit(i: int) -> str:
        try:
            await ledger.reserve("bob", ask(f"job{i}", micros=0, items=1), defaults=limits, now=NOW)
        except QuotaExceeded as exc:
            return str(exc.details["limit"])
        return "admitted"

    outcomes = await asyncio.gather(*(admit(i) for i in range(12)))
    assert sorted(outcomes) == ["active_jobs"] * 9 + ["admitted"] * 3


async def test_settlement_is_idempotent_and_survives_a_new_ledger(collection: Collection) -> None:
    first = MongoUsageLedger(collection)
    await first.reserve("alice", ask("a", "b"), defaults=LIMITS, now=NOW)
    await first.reserve("alice", ask("a", "b"), defaults=LIMITS, now=NOW)  # a retried admission: no change
    restarted = MongoUsageLedger(collection)
    settle = {"cost_usd": 0.25, "produced": 4, "defaults": LIMITS, "now": NOW}
    results = await asyncio.gather(*(restarted.settle("alice", "a", **settle) for _ in range(5)))  # type: ignore[arg-type]
    assert sorted(results) == [False, False, False, False, True]
    ledger = await restarted.ledger("alice", defaults=LIMITS, now=NOW)
    assert (ledger.spent_micros, ledger.reserved_micros, ledger.active_jobs, ledger.day_items) == (
        250_000,
        DOLLAR,
        1,
        14,  # 20 admitted, 6 of a's 10 items not produced
    )
    assert list(ledger.jobs) == ["b"]
    assert await restarted.settle("alice", "a.b$c", **settle) is False  # type: ignore[arg-type]


async def test_a_batch_is_all_or_nothing(collection: Collection) -> None:
    ledger = MongoUsageLedger(collection)
    await ledger.reserve("alice", ask("a", "b", "c"), defaults=LIMITS, now=NOW)
    with pytest.raises(BudgetExceeded) as info:
        await ledger.reserve("alice", ask("d", "e", "f"), defaults=LIMITS, now=NOW)
    assert info.value.details["remaining"] == 2.0
    current = await ledger.ledger("alice", defaults=LIMITS, now=NOW)
    assert sorted(current.jobs) == ["a", "b", "c"]
    assert current.committed_micros == 3 * DOLLAR


async def test_a_new_period_rolls_over_and_overrides_apply(collection: Collection) -> None:
    ledger = MongoUsageLedger(collection)
    await ledger.reserve("alice", ask("a", "b", "c", "d", "e"), defaults=LIMITS, now=NOW)
    await ledger.settle("alice", "a", cost_usd=1.0, produced=10, defaults=LIMITS, now=NOW)
    with pytest.raises(BudgetExceeded):
        await ledger.reserve("alice", ask("f"), defaults=LIMITS, now=NOW)
    await ledger.set_overrides("alice", {"budget_usd": 6.0})
    await ledger.reserve("alice", ask("f"), defaults=LIMITS, now=NOW)
    january = datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC)
    rolled = await ledger.ledger("alice", defaults=LIMITS, now=january)
    assert (rolled.spent_micros, rolled.reserved_micros, rolled.day_items) == (0, 5 * DOLLAR, 0)
    assert rolled.overrides == {"budget_usd": 6.0}
    await ledger.reserve("alice", ask("g"), defaults=LIMITS, now=january)
    with pytest.raises(BudgetExceeded):
        await ledger.reserve("alice", ask("h"), defaults=LIMITS, now=january)
