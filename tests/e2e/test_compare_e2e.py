"""Model comparison end to end (issue 18 #6): two models on 5 items of an example template through the gateway
only (the whole stack, fake OpenRouter), the side-by-side report, the winner, and its one-click full job."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.e2e import api
from tests.e2e.conftest import register_and_login
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e

MODELS = ["openai/gpt-4o-mini", "anthropic/claude-3.5-haiku"]


async def _report(gateway: httpx.AsyncClient, url: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        r = await gateway.get(url, headers=headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["status"] != "running" or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.5)


async def test_compare_two_models_on_five_items(stack: Stack, gateway: httpx.AsyncClient) -> None:
    await api.require_routes(
        gateway, [("POST", "/generate/compare"), ("GET", "/generate/compare/{comparison_id}")]
    )
    user = await register_and_login(gateway, "compare")
    r = await gateway.post("/templates/examples/quiz/import", headers=user.headers)
    assert r.status_code == 201, r.text
    template_id = r.json()["template"]["id"]
    r = await gateway.post(
        "/generate/compare",
        json={"template_id": template_id, "models": MODELS, "sample": 5},
        headers=user.headers,
    )
    assert r.status_code == 202, r.text
    accepted = r.json()
    job_ids = [job["job_id"] for job in accepted["jobs"]]
    assert [job["model"]["id"] for job in accepted["jobs"]] == MODELS

    report = await _report(gateway, accepted["links"]["self"], user.headers)
    assert report["status"] == "completed", report
    for row, model in zip(report["models"], MODELS, strict=True):
        assert row["model"]["id"] == model
        assert row["succeeded"] == 5
        assert row["items_total"] == 5
        assert len(row["items"]) == 5
        assert row["first_try_validity"] is not None
        assert 0 < row["first_try_validity"] <= 1
        assert row["repairs_per_item"] >= 0
        assert row["latency_ms"]["calls"] >= 5
        assert row["latency_ms"]["p50"] <= row["latency_ms"]["p95"]
        assert row["usage"]["completion_tokens"] > 0
        assert row["cost_per_valid_item_usd"] == pytest.approx(row["cost_usd"] / 5, rel=1e-3)
        assert row["judge_score"] is None  # no judge on the template
    for job_id in job_ids:  # the same seed: every model got the same items' variables
        job = (await gateway.get(f"/generate/{job_id}", headers=user.headers)).json()
        assert job["seed"] == accepted["seed"]
        assert job["requested"] == 5

    winner = report["winner"]
    assert winner["job_id"] in job_ids
    assert report["start"]["model"]["id"] == winner["model"]["id"]
    assert report["start"]["template_id"] == template_id
    full = await gateway.post("/generate", json={**report["start"], "count": 2}, headers=user.headers)
    assert full.status_code == 202, full.text
    done = await api.wait_job(gateway, full.json()["job_id"], user.headers)
    assert done["model"]["id"] == winner["model"]["id"]
