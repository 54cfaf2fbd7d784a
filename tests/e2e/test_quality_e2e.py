"""LLM judge and near-duplicate control end to end (issue 18 #4, #5), through the gateway only: a template with a
judge, a ``tone`` sampler and ``validation.near_duplicates`` runs N items on the fake OpenRouter in its quality mode
(some judged items score low, some answers nearly repeat earlier ones); the job ends with exactly N items that
passed, each carrying its verdict, and the history shows the judge's calls apart."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e import api
from tests.e2e.conftest import register_and_login
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e

N = 30
TEMPLATE: dict[str, Any] = {
    "name": "Judged reviews",
    "output": {"format": "json"},
    "prompts": {"user": "Write review {{ index }} in a {{ tone }} tone."},
    "schema": {
        "type": "object",
        "properties": {"title": {"type": "string"}, "text": {"type": "string"}},
        "required": ["title", "text"],
        "additionalProperties": False,
    },
    "variables": {"tone": {"sampler": "category", "values": ["formal", "terse"], "weights": [1, 1]}},
    "validation": {"mode": "strict", "rules": [], "near_duplicates": {"fields": ["text"], "threshold": 0.8}},
    "model": {"provider": "openrouter", "id": "openai/gpt-4o-mini"},
    "judge": {
        "model": {"provider": "openrouter", "id": "meta-llama/llama-3.3-70b-instruct"},
        "rubric": "Is the review useful?",
        "scores": {"usefulness": [1, 5]},
        "accept": "usefulness >= 3",
        "concurrency": 2,
    },
}


async def test_a_judged_job_gives_exactly_n_items_that_passed(
    stack: Stack, gateway: httpx.AsyncClient
) -> None:
    user = await register_and_login(gateway, "judged")
    r = await gateway.post("/templates", json=TEMPLATE, headers=user.headers)
    assert r.status_code == 201, r.text
    template_id = r.json()["id"]
    await api.fake_config(stack.fake_openrouter, rate_low_score=0.25, rate_near_duplicate=0.2)
    try:
        body = {"template_id": template_id, "count": N, "concurrency": 4, "seed": 7}
        r = await gateway.post("/generate", json=body, headers=user.headers)
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        job = await api.wait_job(gateway, job_id, user.headers)
    finally:
        await api.fake_config(stack.fake_openrouter, rate_low_score=0.0, rate_near_duplicate=0.0)

    assert job["status"] == "completed", job
    assert job["counts"]["succeeded"] == N
    assert job["counts"]["rejected"] > 0  # the judge refused some: regenerated
    items = await api.all_items(gateway, job_id, user.headers)
    assert [i["index"] for i in items] == list(range(N))
    for item in items:
        assert item["judge"]["scores"] == {"usefulness": 5.0}
        assert item["provenance"]["judge"] == {"usefulness": 5.0}
        assert item["provenance"]["sampled"]["tone"] in ("formal", "terse")

    r = await gateway.get(f"/history/{job_id}", headers=user.headers)
    assert r.status_code == 200, r.text
    history = r.json()
    judge_usage = history["judge_usage"]
    # every item accepted or refused by the judge cost a judge call; items rejected as near-duplicates (at most
    # near_duplicates_rejected: it counts every answer turned away, repaired ones too) never reached the judge
    judged_rejections = job["counts"]["rejected"] - history["near_duplicates_rejected"]
    assert judge_usage["calls"] >= N + judged_rejections
    assert 0 < judge_usage["cost_usd"] < history["usage"]["cost_usd"]
    assert history["near_duplicates_rejected"] > 0  # near-duplicate answers were turned away
    assert history["diversity"]["near_duplicate_rate"] == 0.0
