"""Multi-stage items (issue 18) in the real generator: a two-stage template (review → FAQ) on the fake OpenRouter,
Kafka commands and events, Mongo state."""

from __future__ import annotations

import json
import uuid
from typing import Any

from services.generator.tests.integration.conftest import Harness
from services.generator.tests.integration.test_generation_jobs import assert_consistent, items_of
from services.generator.tests.support import command, template

FAQ_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "faq": {
            "type": "array",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {"q": {"type": "string"}, "a": {"type": "string"}},
                "required": ["q", "a"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["faq"],
    "additionalProperties": False,
}
FAQ_STAGE = {
    "name": "faq",
    "prompts": {"system": "You write FAQs.", "user": "Write an FAQ for the review titled: {{ main.title }}"},
    "schema": FAQ_SCHEMA,
}


async def test_a_two_stage_job_ends_with_exactly_n_complete_items(h: Harness) -> None:
    owner = f"user-{uuid.uuid4().hex[:8]}"
    # concurrency 1: call 1 is item 0's review, calls 2 and 3 its FAQ (both broken: the stage's 2 attempts are
    # spent, the item is rejected), call 4 the review again of the regenerated target, then everything is valid
    h.fake.configure(script=["ok", "invalid_json", "invalid_json"])
    msg = command(
        owner,
        count=4,
        concurrency=1,
        max_attempts_per_item=2,
        template=template(stages=[FAQ_STAGE]),
    )
    doc = await h.run(msg)

    assert (doc["status"], doc["counts"]["succeeded"], doc["counts"]["rejected"]) == ("completed", 4, 1)
    await assert_consistent(h, msg.job_id, owner, 4)
    items = await items_of(h, msg.job_id, owner)
    for item in items:
        assert {"title", "rating", "tags", "faq"} <= set(item["data"])
        assert item["data"]["faq"]["faq"]
        assert item["attempts"] == 2  # one review and one FAQ
    rejected = [
        i for i in await items_of(h, msg.job_id, owner, include_rejected=True) if i["status"] == "rejected"
    ]
    assert [(r["reason"], r["stage"], r["attempts"]) for r in rejected] == [("stage", "faq", 3)]
    (event,) = [e for e in h.tap.events(msg.job_id) if e["type"].endswith("item_rejected")]
    assert (event["data"]["reason"], event["data"]["stage"]) == ("stage", "faq")

    attempts = [a async for a in h.gen.repo.attempts.find({"job_id": msg.job_id})]
    assert sorted(str(a.get("stage")) for a in attempts) == ["None"] * 5 + ["faq"] * 6
    assert doc["counts"]["item_attempts"] == 11
    history = await h.http.get(f"/history/{msg.job_id}", headers=h.auth(owner))
    assert history.status_code == 200, history.text
    by_stage = history.json()["attempts"]["by_stage"]
    assert (by_stage["main"]["count"], by_stage["faq"]["count"]) == (5, 6)
    assert by_stage["faq"]["cost_usd"] > 0

    faq_calls = [
        r["body"]
        for r in h.fake.stats()["last_requests"]
        if r["body"].get("response_format", {}).get("json_schema", {}).get("schema") == FAQ_SCHEMA
    ]
    assert faq_calls, "the stage asks for its own schema as structured output"
    titles = {i["data"]["title"] for i in items}
    prompts = [json.dumps(b["messages"]) for b in faq_calls]
    assert any(title in p for title in titles for p in prompts)  # main's output in the stage's prompt
