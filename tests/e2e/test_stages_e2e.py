"""Multi-stage items end to end (issue 18 #7), through the gateway only: a two-stage template (description → FAQ)
is saved, previewed (every stage's prompts) and run for N items on the fake OpenRouter; every result item holds
both parts and the history bills each stage."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest

from tests.e2e import api
from tests.e2e.conftest import register_and_login
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e

N = 12
DESCRIPTION: dict[str, Any] = {
    "type": "object",
    "properties": {"description": {"type": "string", "minLength": 3}},
    "required": ["description"],
    "additionalProperties": False,
}
FAQ: dict[str, Any] = {
    "type": "object",
    "properties": {"faq": {"type": "array", "minItems": 1, "maxItems": 3, "items": {"type": "string"}}},
    "required": ["faq"],
    "additionalProperties": False,
}
TEMPLATE: dict[str, Any] = {
    "name": "Product description and FAQ",
    "output": {"format": "json"},
    "prompts": {"user": "Describe product number {{ index }} in two sentences."},
    "schema": DESCRIPTION,
    "model": {"provider": "openrouter", "id": "openai/gpt-4o-mini"},
    "stages": [
        {
            "name": "faq",
            "prompts": {
                "system": "You write short FAQs.",
                "user": "Write FAQ entries for this product: {{ main.description }}",
            },
            "schema": FAQ,
        }
    ],
}


async def test_a_two_stage_template_gives_n_items_with_both_parts(
    stack: Stack, gateway: httpx.AsyncClient
) -> None:
    await api.require_routes(gateway, [("POST", "/templates"), ("POST", "/generate/preview")])
    user = await register_and_login(gateway, "stages")
    r = await gateway.post("/templates", json=TEMPLATE, headers=user.headers)
    assert r.status_code == 201, r.text
    template_id = r.json()["id"]

    r = await gateway.post(
        "/generate/preview", json={"template_id": template_id, "count": N}, headers=user.headers
    )
    assert r.status_code == 200, r.text
    first = r.json()["items"][0]
    assert first["user"] == "Describe product number 0 in two sentences."
    (stage,) = first["stages"]
    assert stage["name"] == "faq"
    assert stage["user"] == "Write FAQ entries for this product: <description>"  # main's placeholder output

    r = await gateway.post(
        "/generate", json={"template_id": template_id, "count": N, "concurrency": 4}, headers=user.headers
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    job = await api.wait_job(gateway, job_id, user.headers)
    assert job["status"] == "completed", job
    assert job["counts"]["succeeded"] == N

    items = await api.all_items(gateway, job_id, user.headers)
    assert [i["index"] for i in items] == list(range(N))
    for item in items:
        assert set(item["data"]) == {"description", "faq"}
        assert item["data"]["faq"]["faq"]
        assert item["attempts"] >= 2
    r = await gateway.get(f"/history/{job_id}", headers=user.headers)
    assert r.status_code == 200, r.text
    by_stage = r.json()["attempts"]["by_stage"]
    assert by_stage["main"]["count"] >= N
    assert by_stage["faq"]["count"] >= N
    # the export lays the items out by the complete item's schema: the FAQ stage has its column
    r = await gateway.post("/exports", headers=user.headers, json={"job_id": job_id, "format": "csv"})
    assert r.status_code == 202, r.text
    export_id = r.json()["export_id"]
    info = await api.wait_export(gateway, export_id, user.headers)
    assert info["status"] == "ready", info
    r = await gateway.get(f"/exports/{export_id}/download", headers=user.headers)
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    header = rows[0]
    assert "description" in header
    assert any(column.startswith("faq") for column in header), header
    assert len(rows) == N + 1
