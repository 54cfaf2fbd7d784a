"""Batch-mode jobs on in-memory ports: the fake repository, an in-memory Batch API (it answers each submitted line
with a scripted text when the test lets the batch finish) and the in-memory event sink. Plus the pure batch
bookkeeping of ``domain/batching``."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services.generator.tests.fakes import ScriptedProvider
from services.generator.tests.unit.test_runner import OWNER, Harness, command, harness, review, until

from llmts_common.contracts.common_models import NearDuplicates, ValidationSpec
from llmts_generator.batchjob import BatchConfig, BatchJobRunner, new_runner
from llmts_generator.domain.batching import (
    LineRef,
    OpenSlot,
    PollPolicy,
    batch_record,
    custom_id,
    parse_custom_id,
    rebuild,
)
from llmts_generator.entrypoints.views import attempt_view, job_view
from llmts_generator.handlers import new_job_document
from llmts_generator.runner import JobRunner
from llmts_providers import ChatRequest, ChatResult, Provider
from llmts_providers.batches import BatchLineResult, BatchState
from llmts_providers.errors import ProviderUnavailable

Answer = Callable[
    [int, str], str | None
]  # (line number overall, custom id) → text, or None: the line expires


@dataclass
class FakeBatchApi:
    """Batches in memory. A batch stays ``in_progress`` until ``release`` is set (a test's "the provider is slow");
    then every line is answered by ``answer`` (None: the line expired), or nothing ran if it was cancelled."""

    answer: Answer
    release: asyncio.Event = field(default_factory=asyncio.Event)
    batches: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    submitted: Counter[str] = field(default_factory=Counter)
    cancelled: list[str] = field(default_factory=list)
    metadata: dict[str, Mapping[str, str]] = field(default_factory=dict)
    crash_after_submit: bool = False  # the process dies right after the provider created the batch
    polls: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lines: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def line(self, custom_id: str, request: ChatRequest) -> dict[str, Any]:
        return {"custom_id": custom_id, "body": request.model_dump(mode="json")}

    async def submit(
        self, lines: Sequence[Mapping[str, Any]], metadata: Mapping[str, str] | None = None
    ) -> BatchState:
        batch_id = f"batch_{next(self._ids)}"
        self.batches[batch_id] = list(lines)
        self.status[batch_id] = "validating"
        self.submitted.update(str(line["custom_id"]) for line in lines)
        self.metadata[batch_id] = dict(metadata or {})
        if self.crash_after_submit:
            self.crash_after_submit = False
            raise asyncio.CancelledError  # dies before it could record the batch id
        return self._state(batch_id)

    async def find(self, key: str, value: str, *, scan: int = 200) -> BatchState | None:
        for batch_id in reversed(list(self.batches)[-scan:]):
            if self.metadata[batch_id].get(key) == value:
                return self._state(batch_id)
        return None

    async def get(self, batch_id: str) -> BatchState:
        self.polls += 1
        if self.status[batch_id] not in ("cancelled", "completed") and self.release.is_set():
            self.status[batch_id] = "completed"
        elif self.status[batch_id] == "validating":
            self.status[batch_id] = "in_progress"
        return self._state(batch_id)

    async def cancel(self, batch_id: str) -> BatchState:
        self.cancelled.append(batch_id)
        self.status[batch_id] = "cancelled"
        return self._state(batch_id)

    async def results(self, state: BatchState) -> list[BatchLineResult]:
        if state.status == "cancelled":
            return []
        out = []
        for line in self.batches[state.id]:
            cid = str(line["custom_id"])
            text = self.answer(next(self._lines), cid)
            if text is None:
                error = ProviderUnavailable("batch_expired: not run", "fake", retryable=True)
                out.append(BatchLineResult(cid, error=error))
                continue
            result = ChatResult(
                text=text,
                finish_reason="stop",
                prompt_tokens=10,
                completion_tokens=5,
                cost_usd=0.0005,
                model="m",
                provider="openai-compatible",
                cost_reported=True,
            )
            out.append(BatchLineResult(cid, result=result))
        return out

    def _state(self, batch_id: str) -> BatchState:
        n = len(self.batches[batch_id])
        done = n if self.status[batch_id] == "completed" else 0
        return BatchState(id=batch_id, status=self.status[batch_id], total=n, completed=done)

    def resubmitted(self) -> int:
        return sum(n - 1 for n in self.submitted.values() if n > 1)


def config(api: FakeBatchApi | None, max_lines: int = 50_000) -> BatchConfig:
    return BatchConfig(
        poll=PollPolicy(initial_s=0.001, max_s=0.005),
        cancel_wait_s=1.0,
        api_for=lambda _p: api,
        max_lines=max_lines,
    )


async def claim(
    h: Harness, msg: Any, api: FakeBatchApi | None, provider: Provider, max_lines: int = 50_000
) -> JobRunner:
    doc = await h.repo.claim(msg.job_id, OWNER, h.clock(), timedelta(seconds=15))
    assert doc is not None
    return new_runner(doc, h.deps(provider), config(api, max_lines))


def valid(_n: int, cid: str) -> str:
    return review(cid)  # distinct per line


# --- the job ------------------------------------------------------------------------------------------------


async def test_a_sync_job_gets_the_sync_runner_and_a_batch_job_the_batch_runner() -> None:
    h = harness()
    sync, batch = command(2), command(2, mode="batch")
    for msg in (sync, batch):
        await h.submit(msg)
    assert type(await claim(h, sync, None, ScriptedProvider(valid_text))) is JobRunner
    assert isinstance(await claim(h, batch, None, ScriptedProvider(valid_text)), BatchJobRunner)


def valid_text(n: int, _req: ChatRequest) -> str:
    return review(n)


async def test_exactly_n_with_invalid_lines_repaired_in_a_further_batch() -> None:
    h = harness()
    api = FakeBatchApi(lambda n, cid: "not JSON" if n % 4 == 0 else review(cid))
    api.release.set()
    provider = ScriptedProvider(valid_text)
    msg = command(10, mode="batch", max_attempts=3)
    await h.submit(msg)
    runner = await claim(h, msg, api, provider)

    assert await runner.run() == "completed"

    items = h.repo.accepted(msg.job_id)
    assert [d["index"] for d in items] == list(range(10))
    assert provider.calls == []  # nothing called one by one
    assert len(api.batches) >= 2  # the invalid lines went into a further batch
    assert api.resubmitted() == 0
    attempts = h.repo.attempts_of_job(msg.job_id)
    assert len(attempts) == sum(api.submitted.values())  # each line billed once
    assert {a["mode"] for a in attempts} == {"batch"}
    shown = attempt_view(attempts[0])  # GET /history/{id}
    assert (shown["mode"], shown["batch_id"]) == ("batch", "batch_1")
    outcomes = Counter(a["outcome"] for a in attempts)
    assert outcomes["valid"] == 10
    assert outcomes["invalid"] == len(attempts) - 10 > 0  # the repairs
    doc = h.repo.jobs[msg.job_id]
    assert round(doc["usage"]["cost_usd"], 10) == round(0.0005 * len(attempts), 10)
    assert all(record["ingested"] for record in doc["batches"].values())
    assert {tuple(line) for r in doc["batches"].values() for line in r["lines"]} == {
        (a["slot"], a["target"], a["item_attempt"], a["call"]) for a in attempts
    }


async def test_expired_lines_are_sent_again_then_the_job_ends_exact() -> None:
    h = harness()
    expired: set[str] = set()

    def answer(_n: int, cid: str) -> str | None:
        if cid.endswith("/1") and len(expired) < 3 and cid not in expired:
            expired.add(cid)
            return None  # the first line of three slots expires
        return review(cid)

    api = FakeBatchApi(answer)
    api.release.set()
    msg = command(6, mode="batch")
    await h.submit(msg)
    runner = await claim(h, msg, api, ScriptedProvider(valid_text))

    assert await runner.run() == "completed"

    assert len(h.repo.accepted(msg.job_id)) == 6
    outcomes = Counter(a["outcome"] for a in h.repo.attempts_of_job(msg.job_id))
    assert outcomes == {"valid": 6, "expired": 3}
    assert h.repo.jobs[msg.job_id]["counts"]["item_attempts"] == 6  # an expired line is no item attempt
    assert api.resubmitted() == 0


async def test_a_restarted_job_polls_its_batch_and_submits_no_line_again() -> None:
    h = harness()
    api = FakeBatchApi(valid)
    msg = command(8, mode="batch")
    await h.submit(msg)
    first = await claim(h, msg, api, ScriptedProvider(valid_text))
    task = asyncio.create_task(first.run())
    await until(lambda: api.polls >= 3, "the batch is being polled")
    task.cancel()  # the process dies: no terminal write, no lease release
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert "batch_1" in str(h.repo.jobs[msg.job_id]["batches"])  # persisted before anything else

    h.clock.now += timedelta(seconds=30)  # the lease expired
    api.release.set()
    second = await claim(h, msg, api, ScriptedProvider(valid_text))
    assert await second.run() == "completed"

    assert len(api.batches) == 1
    assert api.resubmitted() == 0
    assert [d["index"] for d in h.repo.accepted(msg.job_id)] == list(range(8))
    assert len(h.repo.attempts_of_job(msg.job_id)) == 8


async def test_cancel_cancels_the_batch_at_the_provider() -> None:
    h = harness()
    api = FakeBatchApi(valid)
    msg = command(5, mode="batch")
    await h.submit(msg)
    runner = await claim(h, msg, api, ScriptedProvider(valid_text))
    task = asyncio.create_task(runner.run())
    await until(lambda: api.polls >= 2, "the batch is being polled")
    runner.cancel()
    assert await task == "cancelled"
    assert api.cancelled == ["batch_1"]
    assert h.repo.accepted(msg.job_id) == []


async def test_sync_fallback_calls_the_repairs_one_by_one() -> None:
    h = harness()
    api = FakeBatchApi(lambda n, cid: "not JSON" if n <= 2 else review(cid))
    api.release.set()
    provider = ScriptedProvider(valid_text)
    msg = command(4, mode="batch", batch_fallback="sync")
    await h.submit(msg)
    runner = await claim(h, msg, api, provider)

    assert await runner.run() == "completed"

    assert len(api.batches) == 1
    assert len(provider.calls) == 2  # the two invalid lines, repaired by sync calls
    modes = Counter(a["mode"] for a in h.repo.attempts_of_job(msg.job_id))
    assert modes == {"batch": 4, "sync": 2}
    assert len(h.repo.accepted(msg.job_id)) == 4


async def test_a_provider_without_batch_api_fails_the_job() -> None:
    h = harness()
    msg = command(3, mode="batch")
    await h.submit(msg)
    runner = await claim(h, msg, None, ScriptedProvider(valid_text))
    assert await runner.run() == "failed"
    assert h.repo.jobs[msg.job_id]["error"]["code"] == "batch_unsupported"


# --- the pure part ------------------------------------------------------------------------------------------


def test_custom_ids_round_trip_and_foreign_ids_are_none() -> None:
    assert parse_custom_id(custom_id("job-1", 7, 2)) == ("job-1", 7, 2)
    assert parse_custom_id("nonsense") is None
    assert parse_custom_id("a/b/c") is None


def test_an_expired_line_repeats_its_item_attempt_a_repair_starts_the_next() -> None:
    s = OpenSlot(slot=3, target=1)
    assert s.next_line() == LineRef(3, 1, 1, 1)
    s.resend = True
    assert s.next_line() == LineRef(3, 1, 1, 2)
    assert s.next_line() == LineRef(3, 1, 2, 3)


def test_rebuild_finds_open_slots_and_awaited_lines() -> None:
    attempts = [
        {"_id": "j:0:1", "slot": 0, "target": 0, "call": 1, "item_attempt": 1, "outcome": "valid"},
        {"_id": "j:1:1", "slot": 1, "target": 1, "call": 1, "item_attempt": 1, "outcome": "invalid"},
        {"_id": "j:2:1", "slot": 2, "target": 2, "call": 1, "item_attempt": 1, "outcome": "expired"},
    ]
    lines = [LineRef(0, 0, 1, 1), LineRef(1, 1, 1, 1), LineRef(2, 2, 1, 1), LineRef(3, 3, 1, 1)]
    batches = {"b1": batch_record("b1", lines, round_no=1, submitted_at=None)}
    found = rebuild("j", attempts, {0}, batches)
    assert set(found.open) == {1, 2, 3}
    assert found.open[1].next_line() == LineRef(1, 1, 2, 2)  # invalid: the next item attempt
    assert found.open[2].next_line() == LineRef(2, 2, 1, 2)  # expired: the same item attempt again
    assert found.awaiting == {"j/3/1": LineRef(3, 3, 1, 1)}  # still at the provider: not resubmitted
    assert found.next_slot == 4
    batches["b1"]["ingested"] = True
    assert rebuild("j", attempts, {0}, batches).awaiting == {}


def test_polling_backs_off_while_nothing_moves() -> None:
    policy = PollPolicy(initial_s=2, max_s=10, factor=2)
    assert [policy.next(d, False) for d in (2, 4, 8, 10)] == [4, 8, 10, 10]
    assert policy.next(10, True) == 2


def test_the_record_keeps_the_lines() -> None:
    record = batch_record("b.1", [LineRef(1, 2, 3, 4)], round_no=2, submitted_at="t")
    assert json.loads(json.dumps(record))["lines"] == [[1, 2, 3, 4]]
    assert (record["id"], record["round"], record["ingested"]) == ("b.1", 2, False)


async def test_a_template_with_near_duplicate_control_fails_as_batch_unsupported() -> None:
    h = harness()
    api = FakeBatchApi(valid)
    msg = command(3, mode="batch")
    validation = ValidationSpec(near_duplicates=NearDuplicates(threshold=0.7))
    msg = msg.model_copy(update={"template": msg.template.model_copy(update={"validation": validation})})
    await h.submit(msg)
    runner = await claim(h, msg, api, ScriptedProvider(valid_text))
    assert await runner.run() == "failed"
    assert h.repo.jobs[msg.job_id]["error"]["code"] == "batch_unsupported"
    assert api.batches == {}  # nothing submitted


async def test_the_cost_cap_counts_every_line_planned_for_a_batch() -> None:
    """All first answers are invalid (10 lines at $0.0005): with a $0.0061 cap only two repair lines fit — each line
    planned for the next batch is counted in flight before the next one is allowed."""
    h = harness()
    api = FakeBatchApi(lambda _n, _cid: "not JSON")
    api.release.set()
    msg = command(10, mode="batch", max_attempts=3, max_cost_usd=0.0061)
    await h.submit(msg)
    runner = await claim(h, msg, api, ScriptedProvider(valid_text))

    assert await runner.run() == "failed"

    assert [len(lines) for lines in api.batches.values()] == [10, 2]
    assert h.repo.jobs[msg.job_id]["stop_reason"] == "max_cost_reached"
    assert h.repo.jobs[msg.job_id]["usage"]["cost_usd"] <= 0.0061


async def test_a_job_that_died_before_recording_its_batch_finds_it_by_its_tag() -> None:
    h = harness()
    api = FakeBatchApi(valid, crash_after_submit=True)
    msg = command(6, mode="batch")
    await h.submit(msg)
    first = await claim(h, msg, api, ScriptedProvider(valid_text))
    (outcome,) = await asyncio.gather(asyncio.ensure_future(first.run()), return_exceptions=True)
    assert isinstance(outcome, asyncio.CancelledError)
    doc = h.repo.jobs[msg.job_id]
    assert not doc.get("batches")  # the batch exists at the provider, its id is nowhere in the job
    assert len(doc["batch_pending"]["lines"]) == 6

    h.clock.now += timedelta(seconds=30)
    api.release.set()
    second = await claim(h, msg, api, ScriptedProvider(valid_text))
    assert await second.run() == "completed"

    assert (len(api.batches), api.resubmitted()) == (1, 0)
    doc = h.repo.jobs[msg.job_id]
    assert doc["batch_pending"] is None
    (record,) = doc["batches"].values()
    assert record["ingested"]
    assert record["submission"] == api.metadata[record["id"]]["llmts_submission"]
    assert [d["index"] for d in h.repo.accepted(msg.job_id)] == list(range(6))


async def test_a_pending_submission_the_provider_never_got_is_planned_again_under_new_slots() -> None:
    h = harness()
    msg = command(3, mode="batch")
    await h.submit(msg)
    lines = [LineRef(slot, slot, 1, 1) for slot in range(3)]
    h.repo.jobs[msg.job_id]["batch_pending"] = {"token": "t-lost", "lines": [x.packed() for x in lines]}
    api = FakeBatchApi(valid)
    api.release.set()
    runner = await claim(h, msg, api, ScriptedProvider(valid_text))
    assert await runner.run() == "completed"
    assert sorted(api.submitted) == [f"{msg.job_id}/{slot}/1" for slot in (3, 4, 5)]  # never job/0/1 again


def test_the_job_view_shows_the_mode_and_the_batches() -> None:
    doc = new_job_document(command(2, mode="batch"), datetime(2026, 1, 1, tzinfo=UTC))
    assert job_view(doc)["mode"] == "batch"
    assert job_view(doc)["batches"] is None  # none submitted yet
    doc["batches"] = {
        "b1": batch_record("b1", [LineRef(0, 0, 1, 1), LineRef(1, 1, 1, 1)], round_no=1, submitted_at=None),
        "b2": {**batch_record("b2", [LineRef(2, 0, 1, 1)], round_no=1, submitted_at=None), "ingested": True},
    }
    assert job_view(doc)["batches"] == {"submitted": 2, "outstanding": 1, "lines": 3, "ids": ["b1", "b2"]}
    assert job_view(new_job_document(command(2), datetime(2026, 1, 1, tzinfo=UTC)))["mode"] == "sync"


async def test_a_job_cancelled_while_no_process_ran_it_cancels_its_batches() -> None:
    """The owner died with a batch at the provider; the cancel came meanwhile: the next claim only writes the
    terminal state — and cancels the batch, which would otherwise go on costing."""
    h = harness()
    api = FakeBatchApi(valid)
    msg = command(4, mode="batch")
    await h.submit(msg)
    first = await claim(h, msg, api, ScriptedProvider(valid_text))
    task = asyncio.create_task(first.run())
    await until(lambda: api.polls >= 2, "the batch is being polled")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    h.repo.jobs[msg.job_id]["cancel_requested"] = True
    h.clock.now += timedelta(seconds=30)

    second = await claim(h, msg, api, ScriptedProvider(valid_text))
    assert await second.run() == "cancelled"
    assert api.cancelled == ["batch_1"]


async def test_lines_beyond_the_batch_size_go_into_several_batches() -> None:
    h = harness()
    api = FakeBatchApi(valid)
    api.release.set()
    msg = command(10, mode="batch")
    await h.submit(msg)
    runner = await claim(h, msg, api, ScriptedProvider(valid_text), max_lines=4)
    assert await runner.run() == "completed"
    assert [len(lines) for lines in api.batches.values()] == [4, 4, 2]
    assert api.resubmitted() == 0
    assert [d["index"] for d in h.repo.accepted(msg.job_id)] == list(range(10))
    assert len(h.repo.jobs[msg.job_id]["batches"]) == 3
