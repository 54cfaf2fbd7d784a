"""The LLM judge and near-duplicate control (issue 18 #4, #5) in the real generator: Kafka commands and events, Mongo
state, the fake OpenRouter as both the generation and the judge model (its quality mode: ``tests/fakes/quality.py``)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from services.generator.tests.integration.conftest import Harness
from services.generator.tests.integration.test_generation_jobs import assert_consistent, items_of
from services.generator.tests.support import command, template
from tests.fakes.quality import judge_answer

from llmts_generator.domain.neardup import NearDupIndex

SEED = 4242
JUDGE_MODEL = "meta-llama/llama-3.3-70b-instruct"
TEXT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "text": {"type": "string"}},
    "required": ["title", "text"],
    "additionalProperties": False,
}
JUDGE: dict[str, Any] = {
    "model": {"provider": "openrouter", "id": JUDGE_MODEL},
    "rubric": "Is the review specific and useful?",
    "scores": {"usefulness": [1, 5], "clarity": [1, 5]},
    "accept": "usefulness >= 3 and clarity >= 3",
    "concurrency": 3,
}


def owner() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


async def test_a_judged_job_ends_with_exactly_n_items_that_passed(h: Harness) -> None:
    user = owner()
    h.fake.configure(long_texts=True, rate_low_score=0.3)
    tpl = template(schema=TEXT_SCHEMA, judge=JUDGE)
    msg = command(
        user, count=8, concurrency=3, template=tpl, seed=SEED
    )  # the seed fixes the texts: the verdicts
    doc = await h.run(msg, within=60)

    assert (doc["status"], doc["counts"]["succeeded"]) == ("completed", 8)
    await assert_consistent(h, msg.job_id, user, 8)
    items = await items_of(h, msg.job_id, user, include_rejected=True)
    accepted = [i for i in items if i["status"] == "accepted"]
    rejected = [i for i in items if i["status"] == "rejected"]
    assert len(accepted) == 8
    for item in accepted:
        assert item["judge"]["scores"] == {"usefulness": 5.0, "clarity": 5.0}
        assert item["judge"]["model"] == {"provider": "openrouter", "id": JUDGE_MODEL}
    assert rejected  # with this seed the fake's judge refuses some of the texts
    assert {r["reason"] for r in rejected} == {"judge"}
    assert all(r["judge"]["scores"] == {"usefulness": 1.0, "clarity": 1.0} for r in rejected)

    attempts = [a async for a in h.gen.repo.attempts.find({"job_id": msg.job_id})]
    judged = [a for a in attempts if a["kind"] == "judge"]
    assert len(judged) == len(accepted) + len(rejected)
    assert {a["model"] for a in judged} == {JUDGE_MODEL}
    assert doc["judge"]["calls"] == len(judged)
    assert doc["judge"]["cost_usd"] == pytest.approx(sum(a["cost_usd"] for a in judged))
    totals = await h.gen.repo.attempt_totals(
        msg.job_id
    )  # what a resumed job restores the judge counters from
    assert (totals["judge_calls"], totals["calls"]) == (len(judged), len(attempts))
    assert totals["judge_cost_usd"] == pytest.approx(doc["judge"]["cost_usd"])
    assert doc["counts"]["item_attempts"] == len(attempts) - len(judged)

    (end,) = [e for e in h.tap.events(msg.job_id) if e["type"].endswith("completed")]
    assert end["data"]["judge_usage"]["calls"] == len(judged)
    history = await h.http.get(f"/history/{msg.job_id}", headers=h.auth(user))
    assert history.status_code == 200, history.text
    assert history.json()["judge_usage"]["calls"] == len(judged)


async def test_near_duplicates_are_turned_away_and_regenerated(h: Harness) -> None:
    user = owner()
    h.fake.configure(rate_near_duplicate=0.3)
    near = {"fields": ["text"], "threshold": 0.8}
    tpl = template(schema=TEXT_SCHEMA, validation={"mode": "strict", "rules": [], "near_duplicates": near})
    msg = command(user, count=12, concurrency=2, max_attempts_per_item=3, template=tpl, seed=SEED)
    doc = await h.run(msg, within=60)

    assert (doc["status"], doc["counts"]["succeeded"]) == ("completed", 12)
    await assert_consistent(h, msg.job_id, user, 12)
    assert doc["counts"]["near_duplicates"] > 0
    attempts = [a async for a in h.gen.repo.attempts.find({"job_id": msg.job_id})]
    assert sum(a["outcome"] == "near_duplicate" for a in attempts) == doc["counts"]["near_duplicates"]
    index = NearDupIndex(["text"], threshold=0.8)
    for item in await items_of(h, msg.job_id, user):
        assert index.nearest(item["data"]) is None  # no two accepted items are near-duplicates
        index.add(str(item["index"]), item["data"])


def test_the_fake_judge_scores_an_item_the_same_way_every_time() -> None:
    schema = {
        "type": "object",
        "properties": {
            "scores": {"type": "object", "properties": {"q": {"type": "number", "minimum": 1, "maximum": 5}}},
            "reason": {"type": "string"},
        },
    }
    verdicts = {
        json.loads(judge_answer(schema, [{"role": "user", "content": f"item {i}"}], 0.5))["scores"]["q"]
        for i in range(40)
    }
    assert verdicts == {1, 5}
    again = judge_answer(schema, [{"role": "user", "content": "item 7"}], 0.5)
    assert again == judge_answer(schema, [{"role": "user", "content": "item 7"}], 0.5)
