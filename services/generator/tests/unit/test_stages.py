"""Multi-stage items (issue 18) on the in-memory runner: a review (stage ``main``) then its reply (stage ``reply``).
The scripted provider tells the stages apart by the structured-output schema of the request."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from datetime import timedelta
from typing import Any

import jsonschema
from services.generator.tests import support
from services.generator.tests.fakes import FakeResponseCache, ScriptedProvider
from services.generator.tests.unit.test_runner import OWNER, SCHEMA, harness, review, until

from llmts_api.generation import GenerationPreviewRequest
from llmts_common.contracts import GenerationRequested, GenerationStarted, ItemRejected
from llmts_common.contracts.common_models import JudgeSpec
from llmts_generator.domain.evaluation import ItemRules
from llmts_generator.entrypoints.http import preview_job
from llmts_generator.entrypoints.views import attempt_view, attempts_by_stage
from llmts_generator.runner import JobRunner
from llmts_generator.stages import StageMemory, complete_value, item_schema
from llmts_providers import ChatRequest, Provider
from llmts_templating.pool import RenderPool

REPLY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"text": {"type": "string", "minLength": 5}},
    "required": ["text"],
    "additionalProperties": False,
}
REPLY = {
    "name": "reply",
    "prompts": {
        "system": "You answer reviews.",
        "user": "Reply to '{{ main.title }}' ({{ main.rating }} stars), item {{ index }}.",
    },
    "schema": REPLY_SCHEMA,
}


def staged(count: int, *, max_attempts: int = 3, concurrency: int = 4, **over: Any) -> GenerationRequested:
    tpl = support.template(id="tpl-st", schema=SCHEMA, stages=[REPLY, *over.pop("more_stages", [])])
    return support.command(
        "u1", count, template=tpl, concurrency=concurrency, max_attempts_per_item=max_attempts, **over
    )


def is_reply(req: ChatRequest) -> bool:
    return req.json_schema is not None and "text" in req.json_schema.get("properties", {})


def reply(text: str) -> str:
    return json.dumps({"text": text})


def prompt_of(req: ChatRequest) -> str:
    return next(m.content for m in req.messages if m.role == "user")


async def test_a_two_stage_item_sees_mains_output_and_holds_both_parts() -> None:
    h = harness()

    def script(call: int, req: ChatRequest) -> str:
        if is_reply(req):
            return reply(f"thanks for: {prompt_of(req)}")
        return review(f"r{call}", rating=4)

    provider = ScriptedProvider(script)
    msg = staged(6)
    await h.submit(msg)
    assert await (await h.claim(msg, provider)).run() == "completed"

    items = h.repo.accepted(msg.job_id)
    assert [d["index"] for d in items] == list(range(6))
    for item in items:
        data = json.loads(item["data_json"])
        assert set(data) == {"title", "rating", "reply"}
        assert (
            f"Reply to '{data['title']}' (4 stars)" in data["reply"]["text"]
        )  # main's output in stage 2's prompt
        assert item["attempts"] == 2
        assert item["calls"] == 2
    replies = [c.request for c in provider.calls if is_reply(c.request)]
    assert len(replies) == 6
    assert all(r.messages[0].content == "You answer reviews." for r in replies)
    attempts = h.repo.attempts_of_job(msg.job_id)
    assert sorted(a.get("stage") or "main" for a in attempts) == ["main"] * 6 + ["reply"] * 6
    assert {a["outcome"] for a in attempts} == {"valid"}
    by_stage = attempts_by_stage(attempts)  # history: billing per stage
    assert {k: v["count"] for k, v in by_stage.items()} == {"main": 6, "reply": 6}
    assert {attempt_view(a)["stage"] for a in attempts} == {None, "reply"}
    doc = h.repo.jobs[msg.job_id]
    assert doc["counts"]["attempts"] == 12
    assert doc["counts"]["item_attempts"] == 12
    assert round(doc["usage"]["cost_usd"], 10) == round(12 * provider.cost_per_call, 10)
    seeds = [c.request.seed for c in provider.calls]
    assert len(set(seeds)) == 12  # every stage call has a seed of its own
    (started,) = h.events.of(msg.job_id, GenerationStarted.TYPE)  # what the exporter lays files out by
    assert started["item_schema"]["properties"]["reply"] == REPLY_SCHEMA
    assert started["item_schema"]["required"] == ["title", "rating", "reply"]
    assert started["item_schema"]["additionalProperties"] is False
    assert started["item_schema_enforced"] is True


async def test_an_invalid_stage_answer_is_repaired_with_the_stages_errors() -> None:
    h = harness()
    answers = {1: review("one"), 2: reply("no"), 3: reply("a proper reply")}
    provider = ScriptedProvider(lambda call, _req: answers[call])
    msg = staged(1, concurrency=1)
    await h.submit(msg)
    assert await (await h.claim(msg, provider)).run() == "completed"

    first, stage_first, stage_repair = (c.request for c in provider.calls)
    assert stage_first.json_schema == REPLY_SCHEMA
    assert first.json_schema != REPLY_SCHEMA
    assert stage_repair.messages[0].content == "You answer reviews."  # the stage's prompts, not main's
    assert reply("no") in "\n".join(m.content for m in stage_repair.messages)
    assert "text" in stage_repair.messages[-1].content
    attempts = h.repo.attempts_of_job(msg.job_id)
    assert [(a.get("stage"), a["item_attempt"], a["kind"], a["outcome"]) for a in attempts] == [
        (None, 1, "first", "valid"),
        ("reply", 1, "first", "invalid"),
        ("reply", 2, "repair", "valid"),
    ]
    (item,) = h.repo.accepted(msg.job_id)
    assert json.loads(item["data_json"])["reply"] == {"text": "a proper reply"}
    assert item["attempts"] == 3


async def test_a_stage_out_of_attempts_rejects_the_item_and_the_target_is_regenerated() -> None:
    h = harness()
    replies = {"n": 0}

    def script(call: int, req: ChatRequest) -> str:
        if is_reply(req):
            replies["n"] += 1
            return (
                reply("bad") if replies["n"] <= 2 else reply(f"fine reply {call}")
            )  # the first item's 2 fail
        return review(f"r{call}")

    provider = ScriptedProvider(script)
    msg = staged(3, max_attempts=2, concurrency=1)
    await h.submit(msg)
    assert await (await h.claim(msg, provider)).run() == "completed"

    assert [d["index"] for d in h.repo.accepted(msg.job_id)] == [0, 1, 2]  # exactly N complete items
    (rejected,) = h.repo.rejected(msg.job_id)
    assert (rejected["reason"], rejected["stage"], rejected["target"]) == ("stage", "reply", 0)
    assert rejected["errors"][0]["path"].startswith("$.reply")
    assert rejected["last_output"] == reply("bad")
    assert rejected["attempts"] == 3  # main + both of the stage's
    (event,) = h.events.of(msg.job_id, ItemRejected.TYPE)
    assert (event["reason"], event["stage"]) == ("stage", "reply")
    regenerated = next(d for d in h.repo.accepted(msg.job_id) if d["target"] == 0)
    assert regenerated["slot"] != rejected["slot"]
    # the rejected item's main answer was released: the regenerated target may give it again
    assert (
        json.loads(regenerated["data_json"])["title"]
        != json.loads(h.repo.accepted(msg.job_id)[1]["data_json"])["title"]
    )


async def test_a_main_answer_is_reserved_while_its_stages_run_and_released_on_rejection() -> None:
    """Target 1 gives target 0's main answer while target 0's stage is in flight: a duplicate (repaired). Target 0's
    stage then fails for good, which releases its main answer: regenerated, target 0 gives it again and it counts."""
    h = harness()
    stage_started, gate = asyncio.Event(), asyncio.Event()
    calls = {"t0_replies": 0, "t1_mains": 0}

    async def script(call: int, req: ChatRequest) -> str:
        prompt = prompt_of(req)
        if is_reply(req):
            if "item 0" not in prompt:
                return reply(f"good reply {call}")
            calls["t0_replies"] += 1
            if calls["t0_replies"] == 1:
                stage_started.set()
                await gate.wait()  # held while target 1 answers main
            return reply("bad") if calls["t0_replies"] <= 2 else reply(f"good reply {call}")
        if "number 0" in prompt:
            return review("same")
        calls["t1_mains"] += 1
        if calls["t1_mains"] == 1:
            await stage_started.wait()
            return review("same")
        gate.set()
        return review(f"r{call}")

    provider = ScriptedProvider(script)
    msg = staged(2, max_attempts=2, concurrency=2)
    await h.submit(msg)
    assert await (await h.claim(msg, provider)).run() == "completed"

    attempts = h.repo.attempts_of_job(msg.job_id)
    assert [a["outcome"] for a in attempts if a.get("stage") is None and a["target"] == 1] == [
        "duplicate",
        "valid",
    ]
    (rejected,) = h.repo.rejected(msg.job_id)
    assert (rejected["target"], rejected["reason"], rejected["stage"]) == (0, "stage", "reply")
    by_target = {d["target"]: json.loads(d["data_json"]) for d in h.repo.accepted(msg.job_id)}
    assert by_target[0]["title"] == "review same"  # released by the rejected item, accepted afterwards
    assert by_target[1]["title"] != "review same"


async def test_three_stages_see_every_earlier_output_and_the_budget_grows_with_stages() -> None:
    h = harness()
    critique = {
        "name": "critique",
        "prompts": {"user": "Critique '{{ reply.text }}' to '{{ main.title }}'."},
        "schema": {"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]},
    }

    def script(call: int, req: ChatRequest) -> str:
        if is_reply(req):
            return reply(f"reply number {call}")
        if req.json_schema is not None and "score" in req.json_schema.get("properties", {}):
            assert "Critique 'reply number" in prompt_of(req)
            return json.dumps({"score": call})
        return review(f"r{call}")

    provider = ScriptedProvider(script)
    msg = staged(2, concurrency=1, more_stages=[critique])
    await h.submit(msg)
    runner = await h.claim(msg, provider)
    assert await runner.run() == "completed"
    data = [json.loads(d["data_json"]) for d in h.repo.accepted(msg.job_id)]
    assert [set(d) for d in data] == [{"title", "rating", "reply", "critique"}] * 2
    assert runner.scheduler is not None
    assert runner.scheduler.budget == 2 * 3 * 3 * 1.5  # N × max attempts × (1 + 2 stages) × factor


def test_stage_memory_rebuilds_a_stages_unique_values_from_the_accepted_items() -> None:
    stage = {**REPLY, "validation": {"rules": [{"path": "text", "unique": True}]}}
    msg = support.command("u1", 2, template=support.template(schema=SCHEMA, stages=[stage]))
    rules = ItemRules.of(msg)
    accepted = [
        {"data_json": json.dumps(complete_value({"main": {"title": "a"}, "reply": {"text": "hello"}}))}
    ]
    memory = StageMemory.of(rules, accepted)
    (reply_rules,) = rules.stages
    assert memory.state(reply_rules).check({"text": "hello"}, reply_rules.rules.rules) != []
    assert memory.state(reply_rules).check({"text": "other"}, reply_rules.rules.rules) == []


async def test_the_preview_shows_every_stage_with_placeholder_outputs() -> None:
    provider = ScriptedProvider(lambda _call, _req: "unused")

    async def resolve(model_id: str, _provider: str | None) -> tuple[Provider, str]:
        return provider, model_id

    msg = staged(2)
    body = GenerationPreviewRequest(request=msg.model_dump(mode="json"), items=2)
    answer = await preview_job(body, resolve, RenderPool(workers=1, isolation="thread"))

    assert provider.calls == []  # a preview calls no model
    first, second = answer["items"]
    assert first["user"] == "Write review number 0."
    (stage,) = first["stages"]
    assert stage["name"] == "reply"
    assert (
        stage["user"] == "Reply to '<title>' (1 stars), item 0."
    )  # main's placeholder: schema example values
    assert stage["request_body"]["json_schema"] == REPLY_SCHEMA
    assert second["stages"][0]["user"].endswith("item 1.")
    # the reply stage's calls are added to main's: 2 items × 2 stages × 3 attempts
    estimate = answer["estimate"]
    assert (estimate["low"]["calls"], estimate["high"]["calls"]) == (4, 12)
    assert estimate["low"]["prompt_tokens"] > 2 * estimate["prompt_tokens_per_call"]
    plain = await preview_job(
        GenerationPreviewRequest(request=support.command("u1", 1).model_dump(mode="json"), items=1),
        resolve,
        RenderPool(workers=1, isolation="thread"),
    )
    assert "stages" not in plain["items"][0]
    assert (plain["estimate"]["low"]["calls"], plain["estimate"]["high"]["calls"]) == (1, 3)


async def test_a_rerun_with_the_same_seed_answers_every_stage_from_the_cache() -> None:
    h, cache = harness(), FakeResponseCache()

    def script(call: int, req: ChatRequest) -> str:
        return reply(f"reply {call}: {prompt_of(req)}") if is_reply(req) else review(f"r{call}")

    providers = []
    jobs = []
    for _ in range(2):
        provider = ScriptedProvider(script)
        msg = staged(5, seed=7, cache="use")
        await h.submit(msg)
        doc = await h.repo.claim(msg.job_id, OWNER, h.clock(), timedelta(seconds=15))
        assert doc is not None
        assert await JobRunner(doc, dataclasses.replace(h.deps(provider), cache=cache)).run() == "completed"
        providers.append(provider)
        jobs.append(msg.job_id)

    assert len(providers[0].calls) == 10
    assert len(cache.entries) == 10  # each stage call is keyed like any call
    assert providers[1].calls == []
    first, second = ([d["data_json"] for d in h.repo.accepted(job)] for job in jobs)
    assert sorted(first) == sorted(second)
    rerun = h.repo.attempts_of_job(jobs[1])
    assert sorted(str(a.get("stage")) for a in rerun if a["cached"]) == ["None"] * 5 + ["reply"] * 5


async def test_a_half_done_item_is_redone_from_main_after_a_crash() -> None:
    h = harness()
    never = asyncio.Event()
    replies = {"n": 0}

    async def hang() -> str:
        await never.wait()
        return reply("never")

    def first_script(call: int, req: ChatRequest) -> Any:
        if is_reply(req):
            replies["n"] += 1
            return reply(f"first reply {call}") if replies["n"] <= 2 else hang()
        return review(f"a{call}")

    first = ScriptedProvider(first_script)
    msg = staged(4, concurrency=2)
    await h.submit(msg)
    task = asyncio.create_task((await h.claim(msg, first)).run())
    await until(lambda: len(h.repo.accepted(msg.job_id)) == 2 and first.in_flight == 2, "two complete items")
    task.cancel()  # the process dies with two items half done (main valid, stage in flight)
    with contextlib.suppress(asyncio.CancelledError):
        await task

    h.clock.now += timedelta(seconds=16)  # the lease expired
    second = ScriptedProvider(
        lambda call, req: reply(f"second reply {call}") if is_reply(req) else review(f"b{call}")
    )
    assert await (await h.claim(msg, second)).run() == "completed"

    items = h.repo.accepted(msg.job_id)
    assert [d["index"] for d in items] == [0, 1, 2, 3]
    redone = [json.loads(d["data_json"]) for d in items[2:]]
    assert all(d["title"].startswith("review b") and d["reply"]["text"].startswith("second") for d in redone)
    assert (
        sum(not is_reply(c.request) for c in second.calls) == 2
    )  # the half-done targets start again from main
    assert len(second.calls) == 4


async def test_a_stages_unique_rule_compares_its_outputs_across_items() -> None:
    h = harness()
    stage = {**REPLY, "validation": {"rules": [{"path": "text", "unique": True}]}}
    msg = support.command(
        "u1",
        3,
        template=support.template(id="tpl-u", schema=SCHEMA, stages=[stage]),
        concurrency=1,
        max_attempts_per_item=3,
    )
    replies = {"n": 0}

    def script(call: int, req: ChatRequest) -> str:
        if not is_reply(req):
            return review(f"r{call}")
        replies["n"] += 1
        return reply("the same reply") if replies["n"] <= 2 else reply(f"reply {call}")

    provider = ScriptedProvider(script)
    await h.submit(msg)
    assert await (await h.claim(msg, provider)).run() == "completed"

    texts = [json.loads(d["data_json"])["reply"]["text"] for d in h.repo.accepted(msg.job_id)]
    assert len(set(texts)) == 3
    stage_outcomes = [a["outcome"] for a in h.repo.attempts_of_job(msg.job_id) if a.get("stage") == "reply"]
    assert stage_outcomes == ["valid", "invalid", "valid", "valid"]  # item 1's first reply repeats item 0's


async def test_the_llm_judge_scores_the_complete_item_after_its_last_stage() -> None:
    h = harness()
    seen: list[str] = []

    def judge_script(_call: int, req: ChatRequest) -> str:
        asked = req.messages[-1].content or ""
        seen.append(asked)
        quality = 4 if "first reply" in asked and len(seen) > 1 else 1  # the first item judged is refused
        return json.dumps({"scores": {"quality": quality}, "reason": "scored"})

    gen = ScriptedProvider(
        lambda call, req: reply(f"first reply {call}") if is_reply(req) else review(f"r{call}")
    )
    judge = ScriptedProvider(judge_script)
    spec = {
        "model": {"id": "judge-model"},
        "rubric": "Good?",
        "scores": {"quality": [1, 5]},
        "accept": "quality >= 3",
    }
    msg = staged(3, concurrency=1)
    msg = msg.model_copy(
        update={"template": msg.template.model_copy(update={"judge": JudgeSpec.model_validate(spec)})}
    )
    await h.submit(msg)
    runner = await h.claim(msg, {support.MODEL: gen, "judge-model": judge})
    assert await runner.run() == "completed"

    assert all('"reply"' in asked for asked in seen)  # the judge saw main and the stage's output
    items = h.repo.accepted(msg.job_id)
    assert [d["index"] for d in items] == [0, 1, 2]
    assert all(d["judge"]["scores"] == {"quality": 4.0} for d in items)
    (refused,) = h.repo.rejected(msg.job_id)
    assert refused["reason"] == "judge"
    assert len(judge.calls) == 4


def test_a_stage_schemas_own_defs_and_refs_resolve_in_the_complete_item_schema() -> None:
    """A stage schema with ``$defs`` and local ``$ref``s (to its defs, to itself, between defs) nested under its
    name: the refs are rewritten and the defs hoisted to the root, so the complete item validates as each part did
    (before, ``#/$defs/tone`` inside the nested stage pointed at main's root and did not resolve)."""
    reply_schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "text": {"type": "string"},
            "tone": {"$ref": "#/$defs/tone"},
            "alternatives": {"type": "array", "items": {"$ref": "#/$defs/alt"}},
            "quoted": {"$ref": "#/properties/text"},
        },
        "required": ["text", "tone"],
        "$defs": {
            "tone": {"enum": ["warm", "formal"], "default": {"$ref": "#/not/a/schema"}},
            "alt": {"type": "object", "properties": {"tone": {"$ref": "#/$defs/tone"}}},
        },
    }
    main_schema = {**SCHEMA, "$defs": {"tone": {"type": "integer"}}}  # main's own def of the same name
    req = staged(1)
    tpl = req.template.model_copy(
        update={
            "json_schema": main_schema,
            "stages": [req.template.stages[0].model_copy(update={"json_schema": reply_schema})],
        }
    )
    combined, _strict = item_schema(req.model_copy(update={"template": tpl}))
    assert combined is not None
    nested = combined["properties"]["reply"]
    assert "$defs" not in nested
    assert "$schema" not in nested
    assert nested["properties"]["tone"] == {"$ref": "#/$defs/stage.reply.tone"}
    assert nested["properties"]["quoted"] == {"$ref": "#/properties/reply/properties/text"}
    assert combined["$defs"]["tone"] == {"type": "integer"}  # main's untouched
    alt = combined["$defs"]["stage.reply.alt"]
    assert alt["properties"]["tone"] == {"$ref": "#/$defs/stage.reply.tone"}
    assert combined["$defs"]["stage.reply.tone"]["default"] == {
        "$ref": "#/not/a/schema"
    }  # data, not a schema
    item = {
        "title": "Great",
        "rating": 5,
        "reply": {"text": "Thanks", "tone": "warm", "alternatives": [{"tone": "formal"}], "quoted": "x"},
    }
    validator = jsonschema.Draft202012Validator(combined)
    assert not list(validator.iter_errors(item))
    bad = {**item, "reply": {**item["reply"], "alternatives": [{"tone": "rude"}]}}
    errors = list(validator.iter_errors(bad))
    assert len(errors) == 1
    assert list(errors[0].absolute_path) == ["reply", "alternatives", 0, "tone"]
