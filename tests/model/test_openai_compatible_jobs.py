"""A job on the ``openai-compatible`` provider end to end: the gateway, the catalog (synced from the real Ollama's
``/v1/models``, price from OPENAI_COMPATIBLE_PRICES) and the generator (``/v1/chat/completions`` with a strict
``response_format`` json_schema) against the embedded SmolLM2-135M — exactly N valid items, tokens from the real
usage, the cost computed from the configured price.

Bounded: N=3, ``max_tokens`` caps every call; the server answers one request at a time on this machine.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.e2e import api
from tests.e2e.conftest import register_and_login
from tests.model.conftest import MODEL, PRICE

# a job waits up to 300 s for the real server (two cores shared with everything else): the global pytest-timeout
# (120 s) would cut it first and hide the job's real outcome
pytestmark = [pytest.mark.model, pytest.mark.timeout(600)]

MODEL_REF = {"provider": "openai-compatible", "id": MODEL, "temperature": 0.7, "max_tokens": 60}
TEMPLATE: dict[str, Any] = {
    "name": "local model over /v1",
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
    "validation": {"mode": "strict", "rules": []},
    "model": MODEL_REF,
}


async def catalog_record(gateway: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """The model as the catalog lists it under openai-compatible (the start-up sync runs in the background)."""
    deadline = time.monotonic() + 60.0
    while True:
        r = await gateway.get("/providers/models", params={"provider": "openai-compatible"}, headers=headers)
        assert r.status_code == 200, r.text
        found = {m["id"]: m for m in r.json()["items"]}
        if MODEL in found:
            return found[MODEL]
        assert time.monotonic() < deadline, f"{MODEL} not synced from /v1/models: {sorted(found)}"
        await asyncio.sleep(0.5)


async def test_catalog_lists_the_model_from_v1_models(gateway: httpx.AsyncClient) -> None:
    user = await register_and_login(gateway, "compat-catalog")
    record = await catalog_record(gateway, user.headers)
    assert record["provider"] == "openai-compatible"
    assert record["context_length"] is None  # /v1/models does not say
    assert record["pricing"]["prompt"] == "0.5"
    assert record["pricing"]["completion"] == "1.5"
    assert record["structured_output"] is True
    providers = (await gateway.get("/providers", headers=user.headers)).json()["items"]
    state = next(p for p in providers if p["name"] == "openai-compatible")
    assert (state["enabled"], state["configured"], state["status"]) == (True, True, "ok")


async def test_strict_job_of_three_items_with_computed_cost(gateway: httpx.AsyncClient) -> None:
    user = await register_and_login(gateway, "compat-strict")
    await catalog_record(gateway, user.headers)  # the gateway refuses a model the catalog does not know
    r = await gateway.post("/templates", json=TEMPLATE, headers=user.headers)
    assert r.status_code == 201, r.text
    r = await gateway.post(
        "/generate",
        json={"template_id": r.json()["id"], "count": 3, "concurrency": 1, "max_attempts_per_item": 4},
        headers=user.headers,
    )
    assert r.status_code == 202, r.text
    job = await api.wait_job(gateway, r.json()["job_id"], user.headers, within=300.0)
    assert job["status"] == "completed", job
    assert job["counts"]["succeeded"] == 3
    usage = job["usage"]
    assert usage["prompt_tokens"] > 0
    assert usage["completion_tokens"] > 0
    expected = (
        usage["prompt_tokens"] * PRICE["prompt"] + usage["completion_tokens"] * PRICE["completion"]
    ) / 1e6
    assert usage["cost_usd"] == pytest.approx(expected, rel=1e-6)
    items = await api.all_items(gateway, job["job_id"], user.headers)
    assert [i["index"] for i in items] == [0, 1, 2]
    assert all(isinstance(i["data"]["country"], str) and i["data"]["fact"] for i in items)
    assert all(i["model"] == {"provider": "openai-compatible", "id": MODEL} for i in items)
    print(
        f"openai-compatible N=3: attempts={job['counts']['attempts']} tokens={usage['prompt_tokens']}+"
        f"{usage['completion_tokens']} cost=${usage['cost_usd']:.8f}"
    )
