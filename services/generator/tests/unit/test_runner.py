"""The job runner on in-memory ports: the fake repository (with a switchable outage), a scripted provider and an
in-memory event sink. Every test asserts mechanisms and counts (items, indexes, attempts, calls, events), never
elapsed time; waits are on conditions (bounded by the test timeout)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.generator.tests import support
from services.generator.tests.fakes import (
    FakeEvents,
    FakeGenerationRepository,
    ProviderCall,
    ScriptedProvider,
)

from llmts_common.contracts import (
    GenerationCancelled,
    GenerationCompleted,
    GenerationRequested,
    ItemGenerated,
    ItemRejected,
    ModelRef,
)
from llmts_generator.domain.backoff import BackoffPolicy
from llmts_generator.domain.limiter import FairLimiter
from llmts_generator.handlers import new_job_document
from llmts_generator.runner import JobRunner, RunnerConfig, RunnerDeps
from llmts_providers import ChatRequest, Provider, ProviderError
from llmts_providers.errors import InsufficientCredits, ModelNotFound, ProviderUnavailable
from llmts_templating.pool import RenderPool

OWNER = "unit-test/0001"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 3},
        "rating": {"type": "integer", "minimum": 1, "maximum": 5},
    },
    "required": ["title", "rating"],
    "additionalProperties": False,
}
GENERATED = ItemGenerated.TYPE
REJECTED = ItemRejected.TYPE


def review(tag: str | int, rating: int = 3) -> str:
    return json.dumps({"title": f"review {tag}", "rating": rating})


def command(count: int, *, concurrency: int = 4, max_attempts: int = 3, **over: Any) -> GenerationRequested:
    """A job of ``count`` reviews (title + rating, strict) for user ``u1`` (the shared builder, a smaller schema)."""
    return support.command(
        "u1",
        count,
        template=support.template(id="tpl-1", schema=SCHEMA),
        concurrency=concurrency,
        max_attempts_per_item=max_attempts,
        **over,
    )


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Harness:
    repo: FakeGenerationRepository
    events: FakeEvents
    clock: Clock
    limiter: FairLimiter
    cancel_drain_s: float = 0.5  # how long a cancel awaits the calls at the provider (CANCEL_DRAIN_SECONDS)

    def deps(self, provider: Provider | dict[str, Provider]) -> RunnerDeps:
        """One provider for every model, or one per model id (a fallback chain; an id not in it is unknown)."""

        async def resolve(model_id: str, _provider: str | None) -> tuple[Provider, str]:
            if isinstance(provider, dict):
                if model_id not in provider:
                    raise LookupError(f"no provider serves {model_id!r}")
                return provider[model_id], model_id
            return provider, model_id

        return RunnerDeps(
            repo=self.repo,
            events=self.events,
            resolve_provider=resolve,
            limiter_for=lambda _name: self.limiter,
            renderer=RenderPool(workers=2, isolation="thread"),
            config=RunnerConfig(
                backoff=BackoffPolicy(base_s=0.001, cap_s=0.002), cancel_drain_s=self.cancel_drain_s
            ),
            owner=OWNER,
            clock=self.clock,
        )

    async def submit(self, msg: GenerationRequested) -> None:
        assert await self.repo.create_job(new_job_document(msg, self.clock()))

    async def claim(self, msg: GenerationRequested, provider: Provider | dict[str, Provider]) -> JobRunner:
        doc = await self.repo.claim(msg.job_id, OWNER, self.clock(), timedelta(seconds=15))
        assert doc is not None
        return JobRunner(doc, self.deps(provider))


def harness() -> Harness:
    return Harness(FakeGenerationRepository(), FakeEvents(), Clock(), FairLimiter(64))


async def until(condition: Callable[[], bool], what: str) -> None:
    """Yield to the event loop until ``condition`` holds (a hang guard, not a timing assertion)."""
    for _ in range(200_000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"never happened: {what}")


def assert_dense_and_unique(h: Harness, job_id: str, n: int) -> list[dict[str, Any]]:
    items = h.repo.accepted(job_id)
    assert [d["index"] for d in items] == list(range(n))
    assert len({d["content_hash"] for d in items}) == n
    generated = {e["index"] for e in h.events.of(job_id, GENERATED)}
    assert generated == set(range(n))
    return items


def assert_billed_once(h: Harness, job_id: str, answered: list[ProviderCall]) -> None:
    """One attempt document per answered provider call, and the job's live counters equal to them."""
    attempts = h.repo.attempts_of_job(job_id)
    assert len(attempts) == len(answered)
    assert len({(a["slot"], a["call"], a["run"]) for a in attempts}) == len(attempts)
    doc = h.repo.jobs[job_id]
    assert doc["counts"]["attempts"] == len(answered)
    assert round(doc["usage"]["cost_usd"], 10) == round(sum(c.cost_usd for c in answered), 10)  # any order


# --- exactly N ---------------------------------------------------------------------------------------------


async def test_exactly_n_with_invalid_answers_and_duplicates() -> None:
    n = 20
    h = harness()
    bad: dict[str, int] = {"parse": 0, "schema": 0, "duplicate": 0}

    def script(call: int, _req: ChatRequest) -> str:
        if call % 5 == 0:
            bad["parse"] += 1
            return "this is not JSON"
        if call % 7 == 3:
            bad["schema"] += 1
            return review(call, rating=9)  # rating above the schema's maximum
        if call % 11 == 1 and call > 1:
            bad["duplicate"] += 1
            return review(1)  # the answer of call 1, accepted first
        return review(call)

    provider = ScriptedProvider(script)
    msg = command(n, concurrency=4, max_attempts=6)
    await h.submit(msg)
    runner = await h.claim(msg, provider)

    assert await runner.run() == "completed"

    assert_dense_and_unique(h, msg.job_id, n)
    assert h.repo.rejected(msg.job_id) == []
    assert 1 < provider.max_in_flight <= 4
    outcomes = [a["outcome"] for a in h.repo.attempts_of_job(msg.job_id)]
    assert outcomes.count("valid") == n
    assert outcomes.count("invalid") == bad["parse"] + bad["schema"]
    assert outcomes.count("duplicate") == bad["duplicate"]
    assert min(bad.values()) > 0
    assert len(provider.calls) == n + sum(bad.values())
    assert_billed_once(h, msg.job_id, provider.answered())
    doc = h.repo.jobs[msg.job_id]
    assert (doc["status"], doc["settled"], doc["_outbox"]) == ("completed", True, [])
    assert doc["counts"]["succeeded"] == n
    assert [e["status"] for e in h.events.of(msg.job_id, GenerationCompleted.TYPE)] == ["completed"]


# --- repair ------------------------------------------------------------------------------------------------


async def test_repair_sends_the_validation_errors_and_counts_item_attempts() -> None:
    h = harness()
    answers = {1: review("one", rating=9), 2: review("one", rating=4)}
    provider = ScriptedProvider(lambda call, _req: answers[call])
    msg = command(1, concurrency=1, max_attempts=3)
    await h.submit(msg)
    runner = await h.claim(msg, provider)

    assert await runner.run() == "completed"

    first, repair = (c.request for c in provider.calls)
    assert [m.role for m in first.messages] == ["system", "user"]
    feedback = repair.messages[-1].content
    assert "rating" in feedback
    assert "maximum" in feedback.lower()
    assert answers[1] in "\n".join(m.content for m in repair.messages)  # with the rejected answer
    assert repair.messages[0].content == first.messages[0].content  # the original prompts, not a transcript
    attempts = h.repo.attempts_of_job(msg.job_id)
    assert [(a["item_attempt"], a["kind"], a["outcome"]) for a in attempts] == [
        (1, "first", "invalid"),
        (2, "repair", "valid"),
    ]
    assert attempts[0]["errors"]
    assert attempts[0]["errors"][0]["path"].endswith("rating")
    (item,) = h.repo.accepted(msg.job_id)
    assert (item["attempts"], item["calls"], json.loads(item["data_json"])["rating"]) == (2, 2, 4)
    (event,) = h.events.of(msg.job_id, GENERATED)
    assert event["attempts"] == 2
    assert h.repo.jobs[msg.job_id]["counts"]["item_attempts"] == 2


async def test_an_answer_cut_by_the_token_cap_is_asked_again_not_repaired() -> None:
    h = harness()
    answers = {
        1: '{"title": "review one", "rat',
        2: review("one"),
        3: review("two", rating=9),
        4: review("two"),
    }
    provider = ScriptedProvider(lambda call, _req: answers[call], truncated=lambda n: n == 1)
    msg = command(2, concurrency=1, max_attempts=3)
    await h.submit(msg)
    runner = await h.claim(msg, provider)

    assert await runner.run() == "completed"

    first, fresh, second, repair = (c.request for c in provider.calls)
    assert fresh.messages == first.messages  # the original prompts again, not the cut answer
    assert len(repair.messages) > len(second.messages)  # a schema error (not a cut) is still repaired
    kinds = [(a["target"], a["kind"]) for a in h.repo.attempts_of_job(msg.job_id)]
    assert sorted(kinds) == [(0, "first"), (0, "fresh"), (1, "first"), (1, "repair")]


async def test_item_attempts_exhausted_rejects_with_reasons() -> None:
    h = harness()
    provider = ScriptedProvider(lambda _call, _req: "not json at all")
    msg = command(1, concurrency=1, max_attempts=2)  # budget ceil(1 × 2 × 1.5) = 3 item attempts
    await h.submit(msg)
    runner = await h.claim(msg, provider)

    assert await runner.run() == "failed"  # 0 of 1 item: nothing to show, the job failed (with the reason)

    (rejected,) = h.repo.rejected(msg.job_id)
    assert (rejected["index"], rejected["reason"], rejected["attempts"]) == (-1, "invalid", 2)
    assert rejected["errors"][0]["rule"] == "parse"
    assert rejected["last_output"] == "not json at all"
    (event,) = h.events.of(msg.job_id, REJECTED)
    assert (event["reason"], event["attempts"]) == ("invalid", 2)
    assert h.repo.accepted(msg.job_id) == []
    assert len(provider.calls) == 3  # the budget, not more
    doc = h.repo.jobs[msg.job_id]
    assert (doc["stop_reason"], doc["counts"]["item_attempts"]) == ("attempt_budget_exhausted", 3)
    assert_billed_once(h, msg.job_id, provider.answered())


# --- cancel ------------------------------------------------------------------------------------------------


def gated_provider(answered: int, gate: asyncio.Event) -> ScriptedProvider:
    """Calls 1..``answered`` answer at once; every later call is held at the provider until ``gate`` is set."""

    async def held(call: int) -> str:
        await gate.wait()
        return review(call)

    return ScriptedProvider(lambda call, _req: review(call) if call <= answered else held(call))


async def cancel_with_three_calls_out(
    h: Harness, answered: int, gate: asyncio.Event, *, drain: bool = True
) -> tuple[ScriptedProvider, GenerationRequested, JobRunner, asyncio.Task[str | None]]:
    """A 10-item job at concurrency 3 whose first ``answered`` calls answer and the next three stay at the provider;
    cancelled once they are out (returns the provider, the command, the runner and its task)."""
    provider = gated_provider(answered, gate)
    msg = command(10, concurrency=3)
    await h.submit(msg)
    runner = await h.claim(msg, provider)
    task = asyncio.create_task(runner.run())
    await until(lambda: provider.in_flight == 3 and len(provider.calls) == answered + 3, "three calls out")
    runner.cancel(drain=drain)
    return provider, msg, runner, task


async def test_cancel_awaits_the_calls_at_the_provider_and_bills_them() -> None:
    """The provider bills a call it is serving when the cancel comes: the runner waits for it (up to the drain),
    records and charges its attempt and keeps its valid item; nothing new is called after the cancel. (Before, the
    calls were abandoned unrecorded: start a job, cancel it, and the calls out were never charged.)"""
    h = harness()
    h.cancel_drain_s = 60.0  # far longer than the test: the calls end when the test lets them
    gate = asyncio.Event()
    provider, msg, runner, task = await cancel_with_three_calls_out(h, 4, gate)
    # the job has taken the cancel (what abandoned the calls before) and only then do the calls answer
    await until(lambda: runner.scheduler is not None and runner.scheduler.stopped, "the cancel taken")
    gate.set()

    assert await task == "cancelled"
    assert [c.outcome for c in provider.calls] == ["answered"] * 7
    assert len(provider.calls) == 7  # nothing started after the cancel
    assert_dense_and_unique(h, msg.job_id, 7)  # the answers that came are kept like every finished item
    assert_billed_once(h, msg.job_id, provider.answered())  # all 7, the 3 awaited ones included
    doc = h.repo.jobs[msg.job_id]
    assert (doc["status"], doc["settled"]) == ("cancelled", True)
    (cancelled,) = h.events.of(msg.job_id, GenerationCancelled.TYPE)
    assert (cancelled["succeeded"], cancelled["attempts"]) == (7, 7)


async def test_a_cancel_for_an_erased_account_does_not_await_the_calls() -> None:
    """``UserDeleted`` cancels with ``drain=False``: the calls at the provider are abandoned at once (the erase
    follows; nothing of the user may be written after it), even with a long drain window."""
    h = harness()
    h.cancel_drain_s = 60.0
    gate = asyncio.Event()
    provider, msg, runner, task = await cancel_with_three_calls_out(h, 2, gate, drain=False)
    await until(lambda: runner.scheduler is not None and runner.scheduler.stopped, "the cancel taken")
    gate.set()  # too late: the calls were abandoned when the cancel was taken

    assert await task == "cancelled"
    assert [c.outcome for c in provider.calls[2:]] == ["abandoned"] * 3
    assert_billed_once(h, msg.job_id, provider.answered())
    assert_dense_and_unique(h, msg.job_id, 2)


async def test_cancel_abandons_calls_that_outlast_the_drain_and_keeps_what_was_accepted() -> None:
    h = harness()  # CANCEL_DRAIN_SECONDS 0.5 here: the hanging calls are awaited that long, then abandoned
    never = asyncio.Event()  # never set: the calls outlast the drain
    provider, msg, _runner, task = await cancel_with_three_calls_out(h, 4, never)

    assert await task == "cancelled"
    assert [c.outcome for c in provider.calls[4:]] == ["abandoned"] * 3
    assert len(provider.calls) == 7  # nothing started after the cancel
    assert_dense_and_unique(h, msg.job_id, 4)
    assert_billed_once(h, msg.job_id, provider.answered())  # abandoned calls are not recorded
    doc = h.repo.jobs[msg.job_id]
    assert (doc["status"], doc["settled"]) == ("cancelled", True)
    (cancelled,) = h.events.of(msg.job_id, GenerationCancelled.TYPE)
    assert (cancelled["succeeded"], cancelled["attempts"]) == (4, 4)


# --- storage outage ----------------------------------------------------------------------------------------


async def test_storage_outage_holds_attempts_and_bills_every_call_once() -> None:
    n = 12
    h = harness()
    started_while_known_down: list[int] = []
    runner: JobRunner | None = None

    def observe(call: ProviderCall) -> None:
        assert runner is not None
        assert runner.writer is not None
        if not runner.writer.storage_ok:
            started_while_known_down.append(call.number)

    def script(call: int, _req: ChatRequest) -> str:
        if call == 5:
            h.repo.outage(True)  # the database goes away while calls are in flight
        return review(call)

    provider = ScriptedProvider(script, before_call=observe)
    msg = command(n, concurrency=3)
    await h.submit(msg)
    runner = await h.claim(msg, provider)
    task = asyncio.create_task(runner.run())
    writer = await _writer(runner)
    await until(lambda: writer.outages == 1 and not writer.storage_ok, "the writer noticed the outage")
    await until(lambda: provider.in_flight == 0, "the calls in flight finished")
    calls_at_outage = len(provider.calls)
    await until(lambda: writer.retries >= 3, "the held batch was sent again")
    assert len(provider.calls) == calls_at_outage  # no provider call while the database is away
    assert calls_at_outage < n

    h.repo.outage(False)

    assert await task == "completed"
    assert started_while_known_down == []
    assert writer.storage_ok
    assert writer.orphaned == 0
    assert h.repo.failures >= 3
    assert_dense_and_unique(h, msg.job_id, n)
    assert len(provider.calls) == n  # every answered call became an item: none lost, none redone
    assert_billed_once(h, msg.job_id, provider.answered())  # replies lost mid-write were not applied twice
    assert h.repo.jobs[msg.job_id]["counts"]["succeeded"] == n


async def _writer(runner: JobRunner) -> Any:
    await until(lambda: runner.writer is not None, "the writer started")
    return runner.writer


# --- resume ------------------------------------------------------------------------------------------------


async def test_resume_after_abrupt_death_continues_dense_and_bills_once() -> None:
    n = 8
    h = harness()
    never = asyncio.Event()

    async def hang() -> str:
        await never.wait()
        return review("never")

    first = ScriptedProvider(lambda call, _req: review(f"a{call}") if call <= 5 else hang())
    msg = command(n, concurrency=2)
    await h.submit(msg)
    runner = await h.claim(msg, first)
    task = asyncio.create_task(runner.run())
    await until(lambda: len(h.repo.accepted(msg.job_id)) == 5 and first.in_flight == 2, "five items durable")
    task.cancel()  # the process dies: no terminal write, the lease stays until it expires
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert h.repo.jobs[msg.job_id]["lease_owner"] == OWNER

    h.clock.now += timedelta(seconds=16)  # the lease expired
    second = ScriptedProvider(lambda call, _req: review(f"b{call}"))
    resumed = await h.claim(msg, second)

    assert await resumed.run() == "completed"

    items = assert_dense_and_unique(h, msg.job_id, n)
    assert [json.loads(d["data_json"])["title"][-2:] for d in items[:5]] == ["a1", "a2", "a3", "a4", "a5"]
    assert len(second.calls) == n - 5
    answered = first.answered() + second.answered()
    assert_billed_once(h, msg.job_id, answered)
    assert sorted(a["run"] for a in h.repo.attempts_of_job(msg.job_id)) == [1] * 5 + [2] * 3
    ids_by_index: dict[int, set[str]] = {}
    for env, _topic in h.events.published:
        if env.type == GENERATED:
            ids_by_index.setdefault(env.data["index"], set()).add(env.id)
    assert all(len(ids) == 1 for ids in ids_by_index.values())  # a republish repeats the same envelope id


# --- fallback chain ----------------------------------------------------------------------------------------


def with_fallback(
    n: int, *fallbacks: str, concurrency: int = 4, max_attempts: int = 3
) -> GenerationRequested:
    msg = command(n, concurrency=concurrency, max_attempts=max_attempts)
    model = ModelRef.model_validate(
        {
            "provider": "ollama",
            "id": "primary",
            "fallback": [{"provider": "openrouter", "id": f} for f in fallbacks],
        }
    )
    return msg.model_copy(update={"model": model})


def refused(_call: int, _req: ChatRequest) -> ProviderError:
    return ProviderUnavailable("connection refused", "ollama")  # no status: the server is not there


async def test_unreachable_model_moves_the_remaining_items_to_the_next_model() -> None:
    h = harness()
    primary = ScriptedProvider(refused, name="ollama")
    backup = ScriptedProvider(lambda call, _req: review(f"backup {call}"))
    msg = with_fallback(10, "backup")
    await h.submit(msg)
    runner = await h.claim(msg, {"primary": primary, "backup": backup})

    assert await runner.run() == "completed"

    items = assert_dense_and_unique(h, msg.job_id, 10)
    assert {(d["model"]["provider"], d["model"]["id"]) for d in items} == {("openrouter", "backup")}
    assert {e["model"]["id"] for e in h.events.of(msg.job_id, GENERATED)} == {"backup"}
    assert 1 <= len(primary.calls) <= 4  # the calls already in flight when the server vanished, no retries
    doc = h.repo.jobs[msg.job_id]
    assert doc["model_position"] == 1
    assert doc["model_active"] == {"provider": "openrouter", "id": "backup", "position": 1}
    switch = doc["model_switches"]["1"]
    assert (switch["reason"], switch["from"]["id"], switch["to"]["id"]) == (
        "unreachable",
        "primary",
        "backup",
    )
    outcomes = [a["outcome"] for a in h.repo.attempts_of_job(msg.job_id)]
    assert outcomes.count("fallback") == len(primary.calls)  # recorded (billed), not item attempts
    assert doc["counts"]["item_attempts"] == 10


async def test_model_not_found_mid_job_keeps_what_the_first_model_made() -> None:
    h = harness()
    primary = ScriptedProvider(
        lambda call, _req: review(f"primary {call}") if call <= 5 else ModelNotFound("gone", "ollama", 404),
        name="ollama",
    )
    backup = ScriptedProvider(lambda call, _req: review(f"backup {call}"))
    msg = with_fallback(10, "backup", concurrency=1)
    await h.submit(msg)
    runner = await h.claim(msg, {"primary": primary, "backup": backup})

    assert await runner.run() == "completed"

    items = assert_dense_and_unique(h, msg.job_id, 10)
    assert [d["model"]["id"] for d in items] == ["primary"] * 5 + ["backup"] * 5
    assert h.repo.jobs[msg.job_id]["model_switches"]["1"]["reason"] == "model_not_found"


async def test_unresolvable_fallback_is_skipped_and_an_exhausted_chain_fails_as_before() -> None:
    h = harness()
    primary = ScriptedProvider(lambda _c, _r: InsufficientCredits("no credits", "ollama", 402), name="ollama")
    msg = with_fallback(3, "nobody-serves-this")
    await h.submit(msg)
    runner = await h.claim(msg, {"primary": primary})

    assert await runner.run() == "failed"

    doc = h.repo.jobs[msg.job_id]
    assert doc["error"]["code"] == "insufficient_credits"
    assert "model_switches" not in doc


async def test_open_breaker_moves_to_the_next_model() -> None:
    h = harness()
    primary = ScriptedProvider(lambda _c, _r: "not JSON at all", name="ollama")
    backup = ScriptedProvider(lambda call, _req: review(f"backup {call}"))
    msg = with_fallback(10, "backup", concurrency=2, max_attempts=6)
    await h.submit(msg)
    runner = await h.claim(msg, {"primary": primary, "backup": backup})

    assert await runner.run() == "completed"

    assert_dense_and_unique(h, msg.job_id, 10)
    doc = h.repo.jobs[msg.job_id]
    assert doc["model_switches"]["1"]["reason"] == "breaker_open"
    assert len(primary.calls) >= RunnerConfig().breaker_min_calls


async def test_a_resumed_job_continues_on_the_model_it_had_moved_to() -> None:
    h = harness()
    primary = ScriptedProvider(lambda call, _req: review(f"primary {call}"), name="ollama")
    backup = ScriptedProvider(lambda call, _req: review(f"backup {call}"))
    msg = with_fallback(4, "backup")
    await h.submit(msg)
    h.repo.jobs[msg.job_id]["model_position"] = 1  # written by the run that moved, before it died
    runner = await h.claim(msg, {"primary": primary, "backup": backup})

    assert await runner.run() == "completed"

    assert primary.calls == []
    assert len(backup.calls) == 4
