"""Generation jobs end to end inside the generator: Kafka command in, Mongo state + Kafka events out."""

from __future__ import annotations

import json
import uuid
from typing import Any

from services.generator.tests.integration.conftest import Harness
from services.generator.tests.support import command, template


def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


async def items_of(
    h: Harness, job_id: str, owner: str, include_rejected: bool = False
) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"limit": 1000}
    if include_rejected:
        params["include"] = "rejected"
    r = await h.http.get(f"/generate/{job_id}/result", params=params, headers=h.auth(owner))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == len(body["items"])
    return list(body["items"])


async def assert_consistent(h: Harness, job_id: str, owner: str, requested: int) -> dict[str, Any]:
    """Exactly N dense items, no duplicate content, attempts add up, events add up."""
    doc = await h.job(job_id)
    assert doc is not None
    items = await items_of(h, job_id, owner)
    assert [i["index"] for i in items] == list(range(len(items)))
    assert len({json.dumps(i["data"], sort_keys=True) for i in items}) == len(items)
    attempts = [a async for a in h.gen.repo.attempts.find({"job_id": job_id})]
    assert len(attempts) == doc["counts"]["attempts"]
    assert len({a["_id"] for a in attempts}) == len(attempts)
    assert sum(a["cost_usd"] for a in attempts) == __import__("pytest").approx(doc["usage"]["cost_usd"])
    assert sum(a["prompt_tokens"] for a in attempts) == doc["usage"]["prompt_tokens"]
    evs = h.tap.events(job_id)
    generated = [e for e in evs if e["type"].endswith("item_generated")]
    rejected = [e for e in evs if e["type"].endswith("item_rejected")]
    assert sorted({e["data"]["index"] for e in generated}) == list(range(doc["counts"]["succeeded"]))
    assert len({e["data"]["slot"] for e in rejected}) == doc["counts"]["rejected"]
    assert doc["counts"]["succeeded"] == len(items)
    assert not doc["_outbox"]
    assert doc["published_index"] == doc["counts"]["succeeded"] - 1
    assert doc["counts"]["attempts"] == len(attempts)
    return doc


async def test_happy_path(h: Harness) -> None:
    owner = user()
    msg = command(owner, count=12, concurrency=4)
    doc = await h.run(msg)
    assert doc["status"] == "completed"
    assert doc["counts"]["succeeded"] == 12
    assert doc["stop_reason"] is None
    await assert_consistent(h, msg.job_id, owner, 12)
    evs = h.tap.events(msg.job_id)
    assert evs[0]["type"] == "llmts.generation.started"
    started = evs[0]["data"]  # what the exporter names and lays out the job's files with
    assert started["template_name"] == msg.template.name
    assert started["output_format"] == "json"
    assert started["item_schema"] == msg.template.json_schema
    assert evs[-1]["type"] == "llmts.generation.completed"
    done = evs[-1]["data"]
    assert (done["succeeded"], done["requested"], done["status"]) == (12, 12, "completed")
    assert done["usage"]["cost_usd"] > 0
    assert done["usage"]["cost_usd"] == doc["usage"]["cost_usd"]
    # the status endpoint
    r = await h.http.get(f"/generate/{msg.job_id}", headers=h.auth(owner))
    assert r.status_code == 200
    view = r.json()
    assert view["status"] == "completed"
    assert view["counts"]["succeeded"] == 12
    assert view["template"]["id"] == msg.template.id
    assert view["model"]["id"] == msg.model.id
    assert view["timings"]["duration_seconds"] is not None
    # structured output was requested with the template's schema
    body = h.fake.stats()["last_requests"][-1]["body"]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == msg.template.json_schema


async def test_other_users_get_404(h: Harness) -> None:
    owner = user()
    msg = command(owner, count=1)
    await h.run(msg)
    for path in (f"/generate/{msg.job_id}", f"/generate/{msg.job_id}/result", f"/history/{msg.job_id}"):
        r = await h.http.get(path, headers=h.auth(user()))
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "job_not_found"
    r = await h.http.get(f"/generate/{msg.job_id}")
    assert r.status_code == 401
    r = await h.http.get("/history", headers=h.auth(user()))
    assert r.json()["total"] == 0


async def test_text_template(h: Harness) -> None:
    owner = user()
    tpl = template(output_format="text", schema=None, validation={"mode": "none", "rules": []})
    msg = command(owner, count=3, template=tpl, validation_mode="none")
    doc = await h.run(msg)
    assert doc["status"] == "completed"
    items = await items_of(h, msg.job_id, owner)
    assert all(isinstance(i["data"], str) and i["data"] for i in items)
