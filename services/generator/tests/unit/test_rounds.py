"""Rounds of a job (extend / resume / retry-rejected): the state machine's reopen table, the checks, the round's
caps, the command handler (idempotent by command id) and the real runner on in-memory ports: cancel → resume
ends exactly N without calling again for accepted targets, extend +k adds new indexes without duplicates,
retry-rejected regenerates the rejected slots."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from services.generator.tests.fakes import FakeResponseCache, ScriptedProvider
from services.generator.tests.unit.test_runner import (
    OWNER,
    Harness,
    assert_dense_and_unique,
    command,
    harness,
    review,
    until,
)

from llmts_common.contracts import GenerationCompleted, GenerationReopenRequested
from llmts_common.kafka import TransientError
from llmts_generator.domain import rounds, state
from llmts_generator.handlers import handle_reopen_requested
from llmts_generator.runner import JobRunner
from llmts_providers import ChatRequest

# --- pure ----------------------------------------------------------------------------------------------------


def test_only_a_round_moves_a_finished_job_back_to_queued() -> None:
    for status in state.TERMINAL:
        assert not state.can_transition(status, state.QUEUED)
        assert state.can_reopen("extend", status)
    assert not state.can_reopen("resume", state.COMPLETED)
    assert state.can_reopen("resume", state.CANCELLED)
    assert state.can_reopen("retry_rejected", state.COMPLETED_WITH_ERRORS)
    assert not state.can_reopen("resume", state.RUNNING)


def _doc(
    status: str, succeeded: int, requested: int, rejected: int = 0, settled: bool = True
) -> dict[str, Any]:
    return {
        "_id": "j",
        "status": status,
        "settled": settled,
        "requested": requested,
        "counts": {"succeeded": succeeded, "rejected": rejected, "item_attempts": 9},
        "usage": {"cost_usd": 0.5},
        "request": json.dumps({"count": requested}),
    }


def _reopen(kind: str, count: int = 0, cap: float | None = None) -> rounds.Reopen:
    return rounds.Reopen(kind, count, cap, "cmd-1", datetime(2026, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("doc", "reopen", "code"),
    [
        (_doc("running", 1, 4, settled=False), _reopen("resume"), "job_not_finished"),
        (_doc("completed", 4, 4), _reopen("resume"), "job_not_reopenable"),
        (_doc("cancelled", 4, 4), _reopen("resume"), "nothing_missing"),
        (_doc("stopped", 2, 4), _reopen("retry_rejected"), "nothing_rejected"),
        (_doc("completed", 4, 4), _reopen("extend", 0), "invalid_count"),
    ],
)
def test_refused_rounds(doc: dict[str, Any], reopen: rounds.Reopen, code: str) -> None:
    with pytest.raises(rounds.ReopenRefused) as refused:
        rounds.check(doc, reopen)
    assert refused.value.code == code


def test_round_update_and_caps() -> None:
    doc = _doc("completed", 4, 4)
    update = rounds.reopen_update(doc, _reopen("extend", 3, cap=0.25))
    sets = update["$set"]
    assert (sets["status"], sets["requested"], sets["round"], sets["settled"]) == ("queued", 7, 2, False)
    assert json.loads(sets["request"])["count"] == 7
    assert update["$push"]["rounds"]["command_id"] == "cmd-1"
    reopened = {**doc, **sets}
    caps = rounds.round_caps(reopened, 7, 3, 1.5, request_cap=None)
    assert caps.budget == 9 + 14  # spent before + ceil(3 missing × 3 × 1.5)
    assert caps.max_cost_usd == pytest.approx(0.75)  # spent before + the round's cap
    first = rounds.round_caps({"round": 1}, 7, 3, 1.5, request_cap=1.0)
    assert (first.budget, first.max_cost_usd) == (32, 1.0)


# --- the runner over rounds ------------------------------------------------------------------------------------


def _target(request: ChatRequest) -> int:
    return int(re.findall(r"\d+", request.messages[1].content)[-1])


class _Manager:
    def __init__(self) -> None:
        self.started: list[str] = []

    async def try_start(self, job_id: str, user_id: str | None = None, **_kw: Any) -> bool:
        self.started.append(job_id)
        return True


async def _reopen_job(h: Harness, job_id: str, kind: str, count: int = 0, command_id: str = "c1") -> None:
    message = GenerationReopenRequested(
        job_id=job_id, user_id="u1", kind=kind, count=count, requested_at=h.clock()
    )
    envelope = message.to_envelope(source="test", message_id=command_id)
    manager = _Manager()
    await handle_reopen_requested(message, envelope, repo=h.repo, manager=manager, clock=h.clock)  # type: ignore[arg-type]
    assert manager.started == [job_id]


async def _run_round(h: Harness, job_id: str, provider: ScriptedProvider) -> str | None:
    h.clock.now += timedelta(seconds=60)  # the previous lease has expired
    doc = await h.repo.claim(job_id, OWNER, h.clock(), timedelta(seconds=15))
    assert doc is not None
    return await JobRunner(doc, h.deps(provider)).run()


async def test_cancel_then_resume_ends_exactly_n_without_calling_accepted_targets_again() -> None:
    h = harness()
    never = asyncio.Event()

    async def hang() -> str:
        await never.wait()
        return "{}"

    def first(call: int, request: ChatRequest) -> Any:
        return review(_target(request)) if call <= 4 else hang()

    msg = command(10, concurrency=3)
    await h.submit(msg)
    runner = await h.claim(msg, ScriptedProvider(first))
    task = asyncio.create_task(runner.run())
    await until(lambda: len(h.repo.accepted(msg.job_id)) == 4, "four items accepted")
    runner.cancel()
    assert await task == "cancelled"
    accepted = {json.loads(d["data_json"])["title"] for d in h.repo.accepted(msg.job_id)}

    await _reopen_job(h, msg.job_id, "resume")
    await _reopen_job(h, msg.job_id, "resume")  # redelivered: the same round, nothing more
    second = ScriptedProvider(lambda _n, request: review(_target(request)))
    assert await _run_round(h, msg.job_id, second) == "completed"

    items = assert_dense_and_unique(h, msg.job_id, 10)
    asked = {f"review {_target(c.request)}" for c in second.calls}
    assert len(second.calls) == 6
    assert not asked & accepted  # accepted targets are not paid again
    doc = h.repo.jobs[msg.job_id]
    assert (doc["status"], doc["round"], len(doc["rounds"])) == ("completed", 2, 1)
    (ended,) = h.events.of(msg.job_id, GenerationCompleted.TYPE)
    assert (ended["round"], ended["round_succeeded"], ended["succeeded"]) == (2, 6, 10)
    assert ended["round_cost_usd"] == pytest.approx(6 * second.cost_per_call)
    assert {json.loads(d["data_json"])["title"] for d in items} == {f"review {k}" for k in range(10)}


async def test_extend_adds_new_indexes_without_duplicates_and_pays_only_new_items() -> None:
    h = harness()
    msg = command(6, concurrency=2)
    await h.submit(msg)
    runner = await h.claim(msg, ScriptedProvider(lambda _n, request: review(_target(request))))
    assert await runner.run() == "completed"

    # the provider first answers with old items (duplicates of targets 0..5), then with new ones
    def answers(call: int, request: ChatRequest) -> str:
        return review(call - 1) if call <= 2 else review(100 + call)

    second = ScriptedProvider(answers)
    await _reopen_job(h, msg.job_id, "extend", count=4)
    assert await _run_round(h, msg.job_id, second) == "completed"

    items = assert_dense_and_unique(h, msg.job_id, 10)
    assert [d["index"] for d in items[6:]] == [6, 7, 8, 9]
    outcomes = [a["outcome"] for a in h.repo.attempts_of_job(msg.job_id) if a.get("round") == 2]
    assert outcomes.count("duplicate") == 2
    assert outcomes.count("valid") == 4
    doc = h.repo.jobs[msg.job_id]
    assert (doc["requested"], doc["counts"]["succeeded"]) == (10, 10)


async def test_retry_rejected_regenerates_the_rejected_slots() -> None:
    h = harness()
    msg = command(4, concurrency=1, max_attempts=1)

    def first(_call: int, request: ChatRequest) -> str:
        return "not json" if _target(request) == 2 else review(_target(request))

    await h.submit(msg)
    runner = await h.claim(msg, ScriptedProvider(first))
    assert await runner.run() == "completed_with_errors"
    assert h.repo.rejected(msg.job_id)

    second = ScriptedProvider(lambda _n, request: review(_target(request)))
    await _reopen_job(h, msg.job_id, "retry_rejected")
    assert await _run_round(h, msg.job_id, second) == "completed"

    assert_dense_and_unique(h, msg.job_id, 4)
    # the budget ran out on target 2 (rejected again and again) before target 3 was tried: both are missing
    assert {_target(c.request) for c in second.calls} == {2, 3}
    assert len(second.calls) == 2


async def test_a_later_round_does_not_get_the_refused_cached_answers_back() -> None:
    """Item seeds go on from the stored attempts: a target refused in round 1 is asked with new seeds (new cache
    keys), so its cached invalid answers do not come back and eat the round's attempt budget."""
    h, cache = harness(), FakeResponseCache()
    msg = command(4, concurrency=1, max_attempts=1)

    def first(_call: int, request: ChatRequest) -> str:
        return "not json" if _target(request) == 2 else review(_target(request))

    await h.submit(msg)
    doc = await h.repo.claim(msg.job_id, OWNER, h.clock(), timedelta(seconds=15))
    assert doc is not None
    assert await JobRunner(doc, replace(h.deps(ScriptedProvider(first)), cache=cache)).run() == (
        "completed_with_errors"
    )

    await _reopen_job(h, msg.job_id, "retry_rejected")
    h.clock.now += timedelta(seconds=60)
    doc = await h.repo.claim(msg.job_id, OWNER, h.clock(), timedelta(seconds=15))
    assert doc is not None
    second = ScriptedProvider(lambda _n, request: review(_target(request)))
    assert await JobRunner(doc, replace(h.deps(second), cache=cache)).run() == "completed"

    round_two = [a for a in h.repo.attempts_of_job(msg.job_id) if a.get("round") == 2]
    assert not [a for a in round_two if a["cached"]]
    assert {_target(c.request) for c in second.calls} == {2, 3}


def test_round_end_reports_what_the_round_added_and_cost() -> None:
    assert rounds.round_end({"round": 1}, 5, 0.3) == {"round": 1}
    doc = {"round": 3, "round_base": {"succeeded": 5, "cost_usd": 0.25}}
    assert rounds.round_end(doc, 8, 0.4) == {"round": 3, "round_succeeded": 3, "round_cost_usd": 0.15}


async def test_a_reopen_by_another_user_or_that_the_job_cannot_take_changes_nothing() -> None:
    h = harness()
    msg = command(2, concurrency=1)
    await h.submit(msg)
    runner = await h.claim(msg, ScriptedProvider(lambda _n, request: review(_target(request))))
    assert await runner.run() == "completed"
    before = dict(h.repo.jobs[msg.job_id])
    manager = _Manager()
    for user, kind in (("intruder", "extend"), ("u1", "resume"), ("u1", "retry_rejected")):
        message = GenerationReopenRequested(
            job_id=msg.job_id, user_id=user, kind=kind, count=3, requested_at=h.clock()
        )
        envelope = message.to_envelope(source="test")
        await handle_reopen_requested(message, envelope, repo=h.repo, manager=manager, clock=h.clock)  # type: ignore[arg-type]
    assert manager.started == []
    assert h.repo.jobs[msg.job_id] == before


async def test_a_reopen_of_a_job_not_settled_yet_is_redelivered_later() -> None:
    h = harness()
    msg = command(2, concurrency=1)
    await h.submit(msg)
    h.repo.jobs[msg.job_id].update(status="cancelled", settled=False)  # ended, its outbox not published yet
    message = GenerationReopenRequested(
        job_id=msg.job_id, user_id="u1", kind="resume", requested_at=h.clock()
    )
    with pytest.raises(TransientError):
        await handle_reopen_requested(
            message,
            message.to_envelope(source="test"),
            repo=h.repo,
            manager=_Manager(),  # type: ignore[arg-type]
            clock=h.clock,
            settle_wait_s=0.1,
        )
    assert h.repo.jobs[msg.job_id]["status"] == "cancelled"
