"""The cost reconciler on the local Mongo-wire server against the fake OpenRouter's books: a cut stream (usage
never arrived, reported cost 0) is reconciled to what the provider billed; the work list is durable (a new
reconciler — a restarted process — goes on where the last stopped, each attempt looked up once); a record not
there yet is asked again later; a sampled-out attempt is never looked up."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from services.generator.tests.integration.conftest import MONGO_URL
from tests.fakes.fixtures import OPENROUTER_TEST_KEY, FakeHandle

from llmts_common.mongo import Database, create_client, ensure_indexes
from llmts_generator.adapters.reconciliations import MongoReconciliations
from llmts_generator.adapters.repository import MongoGenerationRepository
from llmts_generator.domain.costs import DONE, DUE, GONE, SAMPLE, cost_summary
from llmts_generator.domain.scheduling import SlotPlan
from llmts_generator.reconciler import CostReconciler, GenerationBooks, ReconcileConfig
from llmts_generator.records import CallRecord, JobRef, attempt_doc
from llmts_providers import ChatMessage, ChatRequest, ChatResult, OpenRouterProvider, ProviderError
from llmts_providers.models import GenerationStats

JOB = JobRef("job-rec", "u1", 1)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    client: Any = create_client(MONGO_URL, server_selection_timeout_ms=10_000)
    name = f"llmts_reconcile_it_{uuid.uuid4().hex[:10]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


@pytest.fixture
async def openrouter(fake_openrouter: FakeHandle) -> AsyncIterator[OpenRouterProvider]:
    provider = OpenRouterProvider(base_url=fake_openrouter.base_url, api_key=OPENROUTER_TEST_KEY)
    yield provider
    await provider._sdk.close()
    await provider._http.aclose()


def request(n: int) -> ChatRequest:
    return ChatRequest(
        model="openai/gpt-4o-mini",
        messages=[ChatMessage(role="user", content=f"Write item {n} as JSON.")],
        stream=True,
    )


async def call_doc(provider: OpenRouterProvider, n: int, at: datetime) -> dict[str, Any]:
    result: ChatResult | None = None
    error: ProviderError | None = None
    try:
        result = await provider.chat(request(n))
    except ProviderError as exc:
        error = exc
    call = CallRecord(n, 1, "first", 1, result, error, at, 5.0)
    return attempt_doc(JOB, SlotPlan(n, n), call, model_id="openai/gpt-4o-mini", provider="openrouter")


class Counting:
    """The provider's books, counting lookups; ``missing`` lookups answer None first (the stats lag)."""

    def __init__(self, inner: GenerationBooks, missing: int = 0) -> None:
        self.inner = inner
        self.missing = missing
        self.asked: list[str] = []

    async def generation_stats(self, generation_id: str) -> GenerationStats | None:
        self.asked.append(generation_id)
        if self.missing > 0:
            self.missing -= 1
            return None
        return await self.inner.generation_stats(generation_id)


def reconciler(db: Database, books: Counting, clock: Clock, **cfg: Any) -> CostReconciler:
    config = ReconcileConfig(**{"sample_rate": 1.0, "delay_s": 5.0, "per_second": 1000.0, **cfg})
    return CostReconciler(MongoReconciliations(db), lambda name: books, config, clock)


async def test_a_cut_stream_is_reconciled_to_what_was_billed_and_a_restart_goes_on(
    db: Database, openrouter: OpenRouterProvider, fake_openrouter: FakeHandle
) -> None:
    clock = Clock()
    repo = MongoGenerationRepository(db)
    await ensure_indexes(db, MongoGenerationRepository.indexes() + MongoReconciliations.indexes())
    fake_openrouter.configure(script=["ok", "disconnect", "ok"])
    docs = [await call_doc(openrouter, n, clock.now) for n in range(3)]
    await repo.insert_attempts(docs)
    cut = docs[1]
    assert cut["error"]["code"] == "provider_unavailable"
    assert cut["cost_usd"] == 0.0
    assert cut["reconcile"] == DUE
    assert [d["reconcile"] for d in (docs[0], docs[2])] == [SAMPLE, SAMPLE]

    books = Counting(openrouter)
    assert await reconciler(db, books, clock).pass_once() == 0  # not before the delay: the stats lag
    clock.now += timedelta(seconds=6)
    # the first process looks one attempt up and dies; a new one goes on with the others
    assert await reconciler(db, books, clock, batch=1).pass_once() == 1
    assert await reconciler(db, books, clock).pass_once() == 2
    assert await reconciler(db, books, clock).pass_once() == 0
    assert sorted(books.asked) == sorted(d["generation_id"] for d in docs)  # each looked up once

    stored = {d["_id"]: d async for d in db["attempts"].find({})}
    got = stored[cut["_id"]]
    assert got["reconcile"] == DONE
    assert got["reconciled_cost_usd"] > 0  # billed in full, though its response reported nothing
    for ok in (docs[0], docs[2]):
        assert stored[ok["_id"]]["reconciled_cost_usd"] == pytest.approx(ok["cost_usd"])
    summary = cost_summary(list(stored.values()))
    assert summary["reported_cost_usd"] == pytest.approx(docs[0]["cost_usd"] + docs[2]["cost_usd"])
    assert summary["difference_usd"] == pytest.approx(got["reconciled_cost_usd"])
    assert summary["attempts"]["reconciled"] == 3


async def test_a_record_not_there_yet_is_asked_again_later_then_given_up(
    db: Database, openrouter: OpenRouterProvider, fake_openrouter: FakeHandle
) -> None:
    clock = Clock()
    await ensure_indexes(db, MongoReconciliations.indexes())
    fake_openrouter.configure(script=["ok", "ok"])
    lagging, lost = [await call_doc(openrouter, n, clock.now) for n in range(2)]
    lost["generation_id"] = "gen-0-never-recorded"
    await MongoGenerationRepository(db).insert_attempts([lagging, lost])
    books = Counting(openrouter, missing=1)
    run = reconciler(db, books, clock, delay_s=1.0, max_tries=3)
    clock.now += timedelta(seconds=2)
    await run.pass_once()  # lagging: None (lag); lost: None (404)
    assert await run.pass_once() == 0  # both deferred
    clock.now += timedelta(seconds=3)
    await run.pass_once()
    clock.now += timedelta(seconds=10)
    await run.pass_once()
    stored = {d["_id"]: d async for d in db["attempts"].find({})}
    assert stored[lagging["_id"]]["reconcile"] == DONE
    assert stored[lost["_id"]]["reconcile"] == GONE
    assert stored[lost["_id"]]["reconcile_tries"] == 3
    assert books.asked.count(lost["generation_id"]) == 3


async def test_sampled_out_attempts_are_never_looked_up(
    db: Database, openrouter: OpenRouterProvider, fake_openrouter: FakeHandle
) -> None:
    clock = Clock()
    fake_openrouter.configure(script=["ok"] * 4)
    docs = [await call_doc(openrouter, n, clock.now) for n in range(4)]
    await MongoGenerationRepository(db).insert_attempts(docs)
    books = Counting(openrouter)
    clock.now += timedelta(seconds=60)
    assert await reconciler(db, books, clock, sample_rate=0.0).pass_once() == 0
    assert books.asked == []
