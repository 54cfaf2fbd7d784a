"""Model comparison's use cases (``llmts_gateway.compare_handlers``) on the in-memory fakes of the ports: jobs
built like ``POST /generate``, admitted together, the record kept consistent with the reservations."""

from __future__ import annotations

from typing import Any

import pytest
from services.gateway.tests.fakes import Fakes

from llmts_api.compare import CompareCreate, CompareQuery
from llmts_common.contracts import GenerationRequested
from llmts_common.errors import AppError, NotFound, ServiceUnavailable
from llmts_gateway import compare_handlers
from llmts_gateway.domain.ports import Answer
from llmts_gateway.domain.quotas import Limits, QuotaExceeded

LIMITS = Limits(max_items_per_job=50, max_active_jobs=5, max_items_per_day=100, budget_usd=5.0)


class MemoryComparisons:
    def __init__(self, fail_insert: bool = False) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.fail_insert = fail_insert

    async def insert(self, record: dict[str, Any]) -> None:
        if self.fail_insert:
            raise ServiceUnavailable("mongo is away")
        self.records[record["_id"]] = dict(record)

    async def get(self, comparison_id: str, *, owner_id: str) -> dict[str, Any] | None:
        record = self.records.get(comparison_id)
        return record if record is not None and record["owner_id"] == owner_id else None

    async def delete(self, comparison_id: str) -> None:
        self.records.pop(comparison_id, None)


@pytest.fixture
def f() -> Fakes:
    fakes = Fakes(max_count=1000, quota=LIMITS)
    fakes.templates.add("tpl1")
    for model in ("m/a", "m/b", "m/c"):
        fakes.catalog.add(model, pricing={"prompt": 0, "completion": 0})
    return fakes


def body(**over: Any) -> CompareCreate:
    return CompareCreate.model_validate(
        {"template_id": "tpl1", "models": ["m/a", "m/b"], "sample": 4, **over}
    )


async def test_one_job_per_model_with_the_same_seed_and_count(f: Fakes) -> None:
    store = MemoryComparisons()
    accepted = await compare_handlers.start(
        body(seed=7), user_id="alice", token="alice", deps=f.deps, store=store
    )
    commands = f.commands.of_type(GenerationRequested)
    assert [c.model.id for c in commands] == ["m/a", "m/b"]
    assert {(c.seed, c.count, c.cache) for c in commands} == {(7, 4, "off")}
    assert [j.job_id for j in accepted.jobs] == [c.job_id for c in commands]
    record = store.records[accepted.comparison_id]
    assert record["owner_id"] == "alice"
    assert [m["job_id"] for m in record["models"]] == [c.job_id for c in commands]
    ledger = await f.usage.ledger("alice", defaults=LIMITS, now=f.now)
    assert ledger.day_items == 8  # the sum of the samples


async def test_a_random_seed_is_shared_by_every_job(f: Fakes) -> None:
    accepted = await compare_handlers.start(
        body(), user_id="alice", token="alice", deps=f.deps, store=MemoryComparisons()
    )
    assert {c.seed for c in f.commands.of_type(GenerationRequested)} == {accepted.seed}


async def test_an_invalid_model_is_named_and_nothing_is_accepted(f: Fakes) -> None:
    store = MemoryComparisons()
    with pytest.raises(AppError) as caught:
        await compare_handlers.start(
            body(models=["m/a", "m/unknown"]), user_id="alice", token="alice", deps=f.deps, store=store
        )
    assert caught.value.details["model"] == 1
    assert "models[1] (m/unknown)" in caught.value.message
    assert f.commands.enqueued == []
    assert store.records == {}


async def test_quota_refusal_accepts_no_job(f: Fakes) -> None:
    f.deps.quota = Limits(max_items_per_job=50, max_active_jobs=2, max_items_per_day=100, budget_usd=5.0)
    with pytest.raises(QuotaExceeded):
        await compare_handlers.start(
            body(models=["m/a", "m/b", "m/c"]),
            user_id="bob",
            token="bob",
            deps=f.deps,
            store=MemoryComparisons(),
        )
    assert f.commands.enqueued == []


async def test_a_record_that_cannot_be_stored_gives_the_reservations_back(f: Fakes) -> None:
    with pytest.raises(ServiceUnavailable):
        await compare_handlers.start(
            body(), user_id="carol", token="carol", deps=f.deps, store=MemoryComparisons(fail_insert=True)
        )
    assert f.commands.enqueued == []
    ledger = await f.usage.ledger("carol", defaults=LIMITS, now=f.now)
    assert (ledger.day_items, ledger.active_jobs, ledger.jobs) == (0, 0, {})


async def test_the_report_of_another_user_is_not_found(f: Fakes) -> None:
    store = MemoryComparisons()
    accepted = await compare_handlers.start(body(), user_id="alice", token="alice", deps=f.deps, store=store)
    with pytest.raises(NotFound) as caught:
        await compare_handlers.report(
            accepted.comparison_id, CompareQuery(), user_id="eve", token="eve", deps=f.deps, store=store
        )
    assert caught.value.code == "comparison_not_found"


async def test_report_while_queued_then_generator_away(f: Fakes) -> None:
    store = MemoryComparisons()
    accepted = await compare_handlers.start(body(), user_id="alice", token="alice", deps=f.deps, store=store)
    report = await compare_handlers.report(
        accepted.comparison_id, CompareQuery(), user_id="alice", token="alice", deps=f.deps, store=store
    )
    assert report.status == "running"
    assert [m.status for m in report.models] == ["queued", "queued"]
    assert report.winner is None
    f.generator.history_job = _away  # type: ignore[method-assign]
    with pytest.raises(AppError) as caught:
        await compare_handlers.report(
            accepted.comparison_id, CompareQuery(), user_id="alice", token="alice", deps=f.deps, store=store
        )
    assert caught.value.status_code == 503


async def _away(job_id: str, *, attempts_limit: int, token: str) -> Answer:
    return Answer(503, {"error": {"code": "service_unavailable", "message": "away", "details": None}})
