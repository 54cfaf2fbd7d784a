"""Jobs on a real model server (the embedded SmolLM2-135M on Ollama) through the gateway: the catalog lists the
model from the real /api/tags + /api/show; a strict job ends with exactly N valid items; a custom-rules job turns
the small model's real mistakes into repairs or rejections with reasons; cancel mid-job stops it.

Bounded: tiny N, `max_tokens` caps every call; the server answers one request at a time on this machine.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import pytest

from tests.e2e import api
from tests.e2e.conftest import register_and_login
from tests.model.conftest import MODEL

# a job waits up to 300 s for the real server (two cores shared with everything else): the global pytest-timeout
# (120 s) would cut it first and hide the job's real outcome
pytestmark = [pytest.mark.model, pytest.mark.timeout(600)]

MODEL_REF = {"provider": "ollama", "id": MODEL, "temperature": 0.7, "max_tokens": 60}


def template(*, mode: str, rules: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "name": f"local model {mode}",
        "prompts": {
            "system": "You write one JSON object and nothing else.",
            "user": "Item {{ index }}: name a country and one short fact about it.",
        },
        "schema": {
            "type": "object",
            "properties": {
                "country": {"type": "string", "minLength": 2, "maxLength": 60},
                "fact": {"type": "string", "minLength": 5, "maxLength": 300},
            },
            "required": ["country", "fact"],
            "additionalProperties": False,
        },
        "validation": {"mode": mode, "rules": rules or []},
        "model": MODEL_REF,
    }


async def create_template(gateway: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]) -> str:
    r = await gateway.post("/templates", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_catalog_lists_the_local_model(gateway: httpx.AsyncClient) -> None:
    user = await register_and_login(gateway, "model-catalog")
    r = await gateway.get("/providers/models", params={"provider": "ollama"}, headers=user.headers)
    assert r.status_code == 200, r.text
    models = {m["id"]: m for m in r.json()["items"]}
    assert MODEL in models, sorted(models)
    record = models[MODEL]
    assert record["context_length"] >= 2048
    assert record["free"] is True


async def test_strict_job_ends_with_exactly_n_valid_items(gateway: httpx.AsyncClient) -> None:
    user = await register_and_login(gateway, "model-strict")
    template_id = await create_template(gateway, user.headers, template(mode="strict"))
    r = await gateway.post(
        "/generate",
        json={"template_id": template_id, "count": 10, "concurrency": 2, "max_attempts_per_item": 4},
        headers=user.headers,
    )
    assert r.status_code == 202, r.text
    job = await api.wait_job(gateway, r.json()["job_id"], user.headers, within=300.0)
    assert job["status"] == "completed", job
    assert job["counts"]["succeeded"] == 10
    assert job["usage"]["cost_usd"] == 0
    assert job["usage"]["prompt_tokens"] > 0
    assert job["usage"]["completion_tokens"] > 0
    items = await api.all_items(gateway, job["job_id"], user.headers)
    assert [i["index"] for i in items] == list(range(10))
    assert all(isinstance(i["data"]["country"], str) and i["data"]["fact"] for i in items)
    print(f"strict N=10: attempts={job['counts']['attempts']} timings={job.get('timings')}")


async def test_custom_rules_repair_or_reject_real_mistakes_with_reasons(gateway: httpx.AsyncClient) -> None:
    """A rule the tiny model often breaks (the fact must mention the year it happened, as digits): its real
    answers get repaired or end rejected with the rule's reason; accepted items all satisfy the rule."""
    user = await register_and_login(gateway, "model-custom")
    rules = [
        {"path": "country", "min_length": 2, "max_length": 60},
        {"path": "fact", "pattern": "[0-9]{4}"},
    ]
    template_id = await create_template(gateway, user.headers, template(mode="custom", rules=rules))
    r = await gateway.post(
        "/generate",
        json={"template_id": template_id, "count": 4, "concurrency": 2, "max_attempts_per_item": 2},
        headers=user.headers,
    )
    assert r.status_code == 202, r.text
    job = await api.wait_job(gateway, r.json()["job_id"], user.headers, within=300.0)
    assert job["status"] in ("completed", "completed_with_errors", "failed"), job
    everything = await api.all_items(gateway, job["job_id"], user.headers, include_rejected=True)
    accepted = [i for i in everything if i["status"] == "accepted"]
    rejected = [i for i in everything if i["status"] == "rejected"]
    assert len(accepted) == job["counts"]["succeeded"]
    assert len(rejected) == job["counts"]["rejected"]
    assert all(re.search("[0-9]{4}", i["data"]["fact"]) for i in accepted)
    for item in rejected:  # a rejection says which rule the real answer broke
        assert item["reason"], item
        assert item["errors"], item
    history = (await gateway.get(f"/history/{job['job_id']}", headers=user.headers)).json()
    outcomes = history["attempts"]["by_outcome"]
    print(f"custom: outcomes={ {k: v['count'] for k, v in outcomes.items()} }")
    print(
        f"custom: accepted={len(accepted)} rejected={len(rejected)} attempts={job['counts']['attempts']} "
        f"status={job['status']}"
    )


async def test_cancel_mid_job_on_the_real_server(gateway: httpx.AsyncClient) -> None:
    user = await register_and_login(gateway, "model-cancel")
    template_id = await create_template(gateway, user.headers, template(mode="strict"))
    r = await gateway.post(
        "/generate", json={"template_id": template_id, "count": 200, "concurrency": 2}, headers=user.headers
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    deadline = time.monotonic() + 120.0
    while (await gateway.get(f"/generate/{job_id}", headers=user.headers)).json()["counts"]["succeeded"] < 1:
        assert time.monotonic() < deadline, "no item within 120 s"
        await asyncio.sleep(0.5)
    r = await gateway.delete(f"/generate/{job_id}", headers=user.headers)
    assert r.status_code == 202, r.text
    job = await api.wait_job(gateway, job_id, user.headers, within=120.0)
    assert job["status"] == "cancelled", job
    assert 1 <= job["counts"]["succeeded"] < 200
