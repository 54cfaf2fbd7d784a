"""The LLM judge and near-duplicate control in a running job (issue 18 #4, #5), on the in-memory ports of
``test_runner``: a scripted generation model and a scripted judge model. Counts and mechanisms only, never time."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from services.generator.tests import support
from services.generator.tests.fakes import ScriptedProvider
from services.generator.tests.unit.test_runner import (
    GENERATED,
    REJECTED,
    Harness,
    assert_dense_and_unique,
    harness,
    until,
)

from llmts_common.contracts import GenerationCompleted, GenerationRequested, ModelRef
from llmts_generator.domain.evaluation import Verdict
from llmts_generator.domain.nearcontrol import NearDupControl
from llmts_generator.domain.scheduling import Scheduler
from llmts_providers import ChatRequest

GEN, JUDGE = "gen-model", "judge-model"
TEXT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "text": {"type": "string"}},
    "required": ["title", "text"],
    "additionalProperties": False,
}
JUDGE_SPEC: dict[str, Any] = {
    "model": {"id": JUDGE},
    "rubric": "Is the review useful?",
    "scores": {"quality": [1, 5]},
    "accept": "quality >= 3",
}
WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
]


def text_of(n: int) -> str:
    """A 24-word text, different for every n (no shared 3-word shingle between two n)."""
    return " ".join(f"{WORDS[(n + i) % len(WORDS)]}{n}w{i}" for i in range(24))


def answer(n: int, text: str | None = None) -> str:
    return json.dumps({"title": f"review {n}", "text": text if text is not None else text_of(n)})


def job(count: int, *, concurrency: int = 2, max_attempts: int = 3, **tpl: Any) -> GenerationRequested:
    return support.command(
        "u1",
        count,
        template=support.template(id="tpl-q", schema=TEXT_SCHEMA, **tpl),
        model=ModelRef(provider="openrouter", id=GEN),
        concurrency=concurrency,
        max_attempts_per_item=max_attempts,
    )


def judged_item(request: ChatRequest) -> int:
    """The number of the review the judge is asked about (from its user message)."""
    found = re.search(r"review (\d+)", request.messages[-1].content or "")
    if found is None:
        found = re.search(r"review (\d+)", request.messages[1].content or "")
    assert found is not None
    return int(found.group(1))


def verdict(quality: float) -> str:
    return json.dumps({"scores": {"quality": quality}, "reason": "scored"})


async def run(
    h: Harness, msg: GenerationRequested, gen: ScriptedProvider, judge: ScriptedProvider
) -> str | None:
    await h.submit(msg)
    runner = await h.claim(msg, {GEN: gen, JUDGE: judge})
    return await runner.run()


# --- the judge ---------------------------------------------------------------------------------------------


async def test_exactly_n_items_that_pass_the_judge_refused_ones_regenerated() -> None:
    n = 12
    h = harness()
    gen = ScriptedProvider(lambda call, _req: answer(call))
    judge = ScriptedProvider(
        lambda _c, req: verdict(1 if judged_item(req) % 3 == 0 else 4), cost_per_call=0.0005
    )
    msg = job(n, concurrency=3, judge=JUDGE_SPEC)

    assert await run(h, msg, gen, judge) == "completed"

    items = assert_dense_and_unique(h, msg.job_id, n)
    refused = [c.number for c in gen.calls if c.number % 3 == 0]
    assert refused  # some answers were refused by the judge …
    assert len(gen.calls) == n + len(refused)  # … and their targets regenerated: exactly N passed
    for item in items:
        assert item["judge"]["scores"] == {"quality": 4.0}
        assert item["judge"]["model"] == {"provider": "openrouter", "id": JUDGE}
        assert json.loads(item["data_json"])["title"] not in {f"review {k}" for k in refused}
    rejected = h.repo.rejected(msg.job_id)
    assert [r["reason"] for r in rejected] == ["judge"] * len(refused)
    assert all(r["judge"]["scores"] == {"quality": 1.0} for r in rejected)
    assert [e["reason"] for e in h.events.of(msg.job_id, REJECTED)] == ["judge"] * len(refused)
    assert all(e["judge"]["scores"]["quality"] == 4.0 for e in h.events.of(msg.job_id, GENERATED))
    attempts = h.repo.attempts_of_job(msg.job_id)
    judged = [a for a in attempts if a["kind"] == "judge"]
    assert len(judged) == len(judge.calls) == n + len(refused)
    assert {a["outcome"] for a in judged} == {"judge_accept", "judge_reject"}
    assert all(a["item_attempt_done"] == 0 for a in judged)
    doc = h.repo.jobs[msg.job_id]
    assert doc["counts"]["item_attempts"] == len(gen.calls)  # judge calls are no item attempts …
    assert doc["counts"]["attempts"] == len(gen.calls) + len(judge.calls)  # … but calls, billed
    assert doc["judge"]["calls"] == len(judge.calls)
    assert round(doc["judge"]["cost_usd"], 10) == round(0.0005 * len(judge.calls), 10)
    total = 0.001 * len(gen.calls) + 0.0005 * len(judge.calls)
    assert round(doc["usage"]["cost_usd"], 10) == round(total, 10)
    (end,) = h.events.of(msg.job_id, GenerationCompleted.TYPE)
    assert end["judge_usage"]["calls"] == len(judge.calls)
    assert round(end["usage"]["cost_usd"], 10) == round(total, 10)


async def test_the_slot_does_not_wait_for_the_judge() -> None:
    """Concurrency 1: while the judge holds its calls, the one generation slot goes on through every target."""
    n = 4
    h = harness()
    gate = asyncio.Event()

    async def held(_req: ChatRequest) -> str:
        await gate.wait()
        return verdict(5)

    gen = ScriptedProvider(lambda call, _req: answer(call))
    judge = ScriptedProvider(lambda _c, req: held(req))
    msg = job(n, concurrency=1, judge={**JUDGE_SPEC, "concurrency": 2})
    await h.submit(msg)
    runner = await h.claim(msg, {GEN: gen, JUDGE: judge})
    task = asyncio.create_task(runner.run())

    await until(lambda: len(gen.calls) == n, "every target generated while the judge holds its answers")
    assert judge.in_flight == 2  # the judge's own concurrency, not the job's
    assert h.repo.accepted(msg.job_id) == []
    progress = runner.progress_event(force=True)
    assert progress is not None
    assert (progress.in_flight, progress.succeeded) == (n, 0)  # the targets at the judge are in flight
    gate.set()

    assert await task == "completed"
    assert_dense_and_unique(h, msg.job_id, n)
    assert gen.max_in_flight == 1


async def test_an_unreadable_judge_answer_is_asked_again_with_the_error() -> None:
    h = harness()
    answers = iter(["I think it is fine", verdict(9), verdict(5)])  # not JSON, out of range, then readable
    gen = ScriptedProvider(lambda call, _req: answer(call))
    judge = ScriptedProvider(lambda _c, _req: next(answers))
    msg = job(1, concurrency=1, judge=JUDGE_SPEC)

    assert await run(h, msg, gen, judge) == "completed"

    (item,) = h.repo.accepted(msg.job_id)
    assert item["judge"]["scores"] == {"quality": 5.0}
    assert item["judge"]["calls"] == 3
    assert "review 1" in (
        judge.calls[0].request.messages[1].content or ""
    )  # the item, and what it was asked from
    judged = [a["outcome"] for a in h.repo.attempts_of_job(msg.job_id) if a["kind"] == "judge"]
    assert judged == ["judge_unreadable", "judge_unreadable", "judge_accept"]
    last = judge.calls[-1].request.messages
    assert last[-2].content == verdict(9)  # its own answer, then why it could not be read
    assert "outside" in (last[-1].content or "")
    assert "could not be read" in (last[-1].content or "")
    assert len(gen.calls) == 1


async def test_an_item_the_judge_never_scores_is_rejected_and_regenerated() -> None:
    h = harness()
    gen = ScriptedProvider(lambda call, _req: answer(call))
    judge = ScriptedProvider(lambda c, _req: "no idea" if c <= 3 else verdict(3))
    msg = job(1, concurrency=1, judge=JUDGE_SPEC)

    assert await run(h, msg, gen, judge) == "completed"

    (rejected,) = h.repo.rejected(msg.job_id)
    assert rejected["reason"] == "judge"
    assert rejected["judge"]["scores"] is None
    assert rejected["errors"][0]["rule"] == "judge_unreadable"
    (item,) = h.repo.accepted(msg.job_id)
    assert json.loads(item["data_json"])["title"] == "review 2"  # the regenerated target
    assert len(judge.calls) == 4


async def test_a_job_whose_judge_model_is_unknown_fails_before_any_call() -> None:
    h = harness()
    gen = ScriptedProvider(lambda call, _req: answer(call))
    msg = job(2, judge={**JUDGE_SPEC, "model": {"id": "nobody-serves-this"}})
    await h.submit(msg)
    runner = await h.claim(msg, {GEN: gen})

    assert await runner.run() == "failed"

    assert h.repo.jobs[msg.job_id]["error"]["code"] == "judge_model_not_found"
    assert gen.calls == []


# --- near-duplicates ---------------------------------------------------------------------------------------


async def test_a_near_duplicate_is_repaired_like_a_duplicate_then_rejected() -> None:
    near = {"fields": ["text"], "threshold": 0.7}
    base = text_of(1)
    twin = base.rsplit(" ", 1)[0] + " different"  # one word of 24 changed: Jaccard ≈ 0.9

    def script(call: int, _req: ChatRequest) -> str:
        return answer(call, twin) if call in (2, 3) else answer(call)

    h = harness()
    gen = ScriptedProvider(script)
    msg = job(
        2, concurrency=1, max_attempts=2, validation={"mode": "strict", "rules": [], "near_duplicates": near}
    )

    assert await run(h, msg, gen, ScriptedProvider(lambda _c, _r: verdict(5))) == "completed"

    outcomes = [a["outcome"] for a in h.repo.attempts_of_job(msg.job_id)]
    assert outcomes.count("near_duplicate") == 2
    (rejected,) = h.repo.rejected(msg.job_id)
    assert (rejected["reason"], rejected["errors"][0]["rule"]) == ("near_duplicate", "near_duplicate")
    repair = gen.calls[2].request.messages[-1].content or ""  # the repair of the first near-duplicate
    assert "too similar to an earlier item" in repair
    assert "clearly different" in repair
    items = [json.loads(d["data_json"]) for d in h.repo.accepted(msg.job_id)]
    assert [i["title"] for i in items] == ["review 1", "review 4"]
    assert h.repo.jobs[msg.job_id]["counts"]["near_duplicates"] == 2


def test_near_duplicate_control_is_rebuilt_from_stored_items() -> None:
    msg = job(3, validation={"mode": "strict", "rules": [], "near_duplicates": {"fields": ["text"]}})
    stored = [{"index": 0, "data_json": answer(7)}]
    control = NearDupControl.of(msg, accepted=stored)
    assert control is not None
    twin = {"title": "x", "text": text_of(7)}
    other = {"title": "y", "text": text_of(8)}

    refused = control.check(Verdict("valid", "accept", value=twin), item_attempt=1, max_attempts=3)
    kept = control.check(Verdict("valid", "accept", value=other), item_attempt=1, max_attempts=3)

    assert (refused.outcome, refused.action) == ("near_duplicate", "repair")
    assert kept.outcome == "valid"
    last = control.check(Verdict("valid", "accept", value=twin), item_attempt=3, max_attempts=3)
    assert (last.action, last.reason) == ("reject", "near_duplicate")
    assert control.found == 2
    assert NearDupControl.of(job(1)) is None


# --- the scheduler -----------------------------------------------------------------------------------------


def test_a_target_being_judged_frees_its_slot_but_stays_undone() -> None:
    sched = Scheduler(requested=2, concurrency=1, budget=10)
    first = sched.launch()
    assert not sched.can_launch()
    sched.slot_to_judge(first.slot)
    second = sched.launch()  # the slot is free at once
    assert second.target == 1
    assert not sched.can_launch()
    sched.slot_succeeded(second.slot)
    assert not sched.finished  # the judged target is still undone
    sched.slot_rejected(first.slot)  # the judge refused it: back to the queue
    assert (sched.rejected, sched.can_launch()) == (1, True)
    again = sched.launch()
    assert again.target == first.target
    sched.slot_succeeded(again.slot)
    assert sched.finished
    assert sched.succeeded == 2


def test_signatures_with_the_index_permutations_are_the_plain_minhash() -> None:
    """The index draws its permutations once (a 3× faster signature); the signature is datasketch's own."""
    from datasketch import MinHash  # type: ignore[import-untyped]  # no stubs

    from llmts_generator.domain.neardup import NearDupIndex, item_text, shingles

    index = NearDupIndex(["text"])
    item = {"text": text_of(3)}
    plain = MinHash(num_perm=128)
    plain.update_batch([g.encode("utf-8") for g in shingles(item_text(item, ["text"]))])
    signature = index.signature(item)
    assert signature is not None
    assert list(signature.hashvalues) == list(plain.hashvalues)


async def test_unique_values_are_reserved_while_the_judge_scores_and_released_on_refusal() -> None:
    """Target 1 answers target 0's title while target 0 is being judged: refused as not unique (repaired). Target 0
    is then refused by the judge, which releases its title: the regenerated target may use it again."""
    h = harness()
    gate = asyncio.Event()
    judged: list[int] = []

    async def judge_script(req: ChatRequest) -> str:
        judged.append(judged_item(req))
        if len(judged) == 1:
            await gate.wait()  # target 0 held by the judge while target 1 answers
            return verdict(1)  # … then refused
        return verdict(5)

    def gen_script(call: int, req: ChatRequest) -> str:
        if call == 2:
            gate.set()
        if call in (1, 2):  # target 0's answer, and target 1's first answer with the same title
            return answer(0, text_of(call))
        return answer(call)

    gen = ScriptedProvider(gen_script)
    judge = ScriptedProvider(lambda _c, req: judge_script(req))
    rules = [{"path": "title", "unique": True}]
    msg = job(2, concurrency=2, judge=JUDGE_SPEC, validation={"mode": "strict", "rules": rules})

    assert await run(h, msg, gen, judge) == "completed"

    outcomes = [a["outcome"] for a in h.repo.attempts_of_job(msg.job_id) if a["kind"] != "judge"]
    assert outcomes.count("invalid") == 1  # target 1's title was taken while target 0 was judged
    (refused,) = h.repo.rejected(msg.job_id)
    assert refused["reason"] == "judge"
    titles = sorted(json.loads(d["data_json"])["title"] for d in h.repo.accepted(msg.job_id))
    assert len(set(titles)) == 2


async def test_the_judge_sees_the_sampled_values_the_item_was_asked_with() -> None:
    h = harness()
    gen = ScriptedProvider(lambda call, _req: answer(call))
    judge = ScriptedProvider(lambda _c, _req: verdict(5))
    tone = {"sampler": "category", "values": ["sarcastic"], "weights": [1]}
    msg = job(1, concurrency=1, judge=JUDGE_SPEC, variables={"tone": tone})

    assert await run(h, msg, gen, judge) == "completed"

    (call,) = judge.calls
    asked = call.request.messages[1].content or ""
    assert '"tone": "sarcastic"' in asked
    (item,) = h.repo.accepted(msg.job_id)
    assert item["provenance"]["sampled"] == {"tone": "sarcastic"}


async def test_a_resumed_job_regenerates_an_item_judged_but_not_written_and_keeps_its_indexes() -> None:
    """The process dies while the judge scores the third item: the resumed run regenerates that target, refuses a
    near-duplicate of a stored item (the index is rebuilt from the stored items) and counts every judge call once."""
    import contextlib
    from datetime import timedelta

    from services.generator.tests.unit.test_runner import OWNER

    h = harness()
    never = asyncio.Event()

    async def hang() -> str:
        await never.wait()
        return verdict(5)

    near = {"fields": ["text"], "threshold": 0.8}
    msg = job(
        4,
        concurrency=1,
        judge=JUDGE_SPEC,
        validation={"mode": "strict", "rules": [], "near_duplicates": near},
    )
    gen1 = ScriptedProvider(lambda call, _req: answer(call))
    judge1 = ScriptedProvider(lambda c, _req: verdict(5) if c <= 2 else hang())
    await h.submit(msg)
    runner = await h.claim(msg, {GEN: gen1, JUDGE: judge1})
    task = asyncio.create_task(runner.run())
    await until(
        lambda: len(h.repo.accepted(msg.job_id)) == 2 and judge1.in_flight == 1, "third item at the judge"
    )
    task.cancel()  # the process dies: the judged-but-not-written item is lost, its attempts are stored
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert h.repo.jobs[msg.job_id]["lease_owner"] == OWNER

    h.clock.now += timedelta(seconds=16)
    twin = text_of(1).rsplit(" ", 1)[0] + " other"  # a near-duplicate of the stored item 0's text

    def script(call: int, _req: ChatRequest) -> str:
        return answer(100 + call, twin) if call == 1 else answer(100 + call)

    gen2 = ScriptedProvider(script)
    judge2 = ScriptedProvider(lambda _c, _req: verdict(5))
    resumed = await h.claim(msg, {GEN: gen2, JUDGE: judge2})

    assert await resumed.run() == "completed"

    assert_dense_and_unique(h, msg.job_id, 4)
    second_run = [
        a["outcome"] for a in h.repo.attempts_of_job(msg.job_id) if a["run"] == 2 and a["kind"] != "judge"
    ]

    assert second_run[0] == "near_duplicate"  # refused against the rebuilt index, then repaired
    doc = h.repo.jobs[msg.job_id]
    assert doc["judge"]["calls"] == len(judge1.answered()) + len(judge2.answered())
    assert doc["counts"]["succeeded"] == 4


def test_the_index_finds_near_duplicates_just_above_the_threshold() -> None:
    """Twins of Jaccard 20/24 ≈ 0.83 (their second word changed: 2 of 22 word 3-shingles) are found; the LSH's
    default bands found about half of them."""
    from llmts_generator.domain.neardup import NearDupIndex

    originals = [{"text": text_of(n)} for n in range(40)]
    index = NearDupIndex(["text"], threshold=0.8)
    for n, item in enumerate(originals):
        index.add(str(n), item)
    found = []
    for n, item in enumerate(originals):
        words = item["text"].split()
        words[1] = "changed"
        match = index.nearest({"text": " ".join(words)})
        found.append(match is not None and match[0] == str(n))
    assert sum(found) >= 36


async def test_judge_calls_count_against_max_cost() -> None:
    """Generation alone (3 × $0.001) stays far under the cap; with the judge's calls ($0.01 each) the job stops."""
    h = harness()
    gen = ScriptedProvider(lambda call, _req: answer(call), cost_per_call=0.001)
    judge = ScriptedProvider(lambda _c, _req: verdict(5), cost_per_call=0.01)
    msg = job(3, concurrency=1, judge=JUDGE_SPEC).model_copy(update={"max_cost_usd": 0.015})

    assert await run(h, msg, gen, judge) == "stopped"

    doc = h.repo.jobs[msg.job_id]
    assert doc["stop_reason"] == "max_cost_reached"
    assert 1 <= doc["counts"]["succeeded"] < 3
    assert doc["usage"]["cost_usd"] <= 0.015 + 0.011  # at most the calls in flight when the cap was reached
    assert round(doc["judge"]["cost_usd"], 10) == round(0.01 * len(judge.answered()), 10)


async def test_the_judge_scores_the_complete_multi_stage_item() -> None:
    stage = {
        "name": "reply",
        "prompts": {"user": "Reply to '{{ main.title }}'."},
        "schema": {
            "type": "object",
            "properties": {"answer": {"type": "string"}},
            "required": ["answer"],
            "additionalProperties": False,
        },
    }

    def script(call: int, req: ChatRequest) -> str:
        if req.json_schema is not None and "answer" in req.json_schema.get("properties", {}):
            return json.dumps({"answer": f"thanks for review {call}"})
        return answer(call)

    h = harness()
    gen = ScriptedProvider(script)
    judge = ScriptedProvider(lambda _c, _req: verdict(4))
    msg = job(2, concurrency=1, judge=JUDGE_SPEC, stages=[stage])

    assert await run(h, msg, gen, judge) == "completed"

    assert len(judge.calls) == 2
    for call in judge.calls:
        assert '"reply"' in (call.request.messages[1].content or "")  # the last stage's output is judged too
    for item in h.repo.accepted(msg.job_id):
        assert set(json.loads(item["data_json"])) == {"title", "text", "reply"}
        assert item["judge"]["scores"] == {"quality": 4.0}
