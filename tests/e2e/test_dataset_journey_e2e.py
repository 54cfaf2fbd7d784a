"""The dataset journey of issue 18 ("done when"), through the gateway only: a user uploads a CSV of products, writes a
two-stage template (description → FAQ) with a sampled tone and an LLM judge, compares three models on 10 items, starts
the full job on the winner with the comparison's one-click body, and gets exactly N complete items that passed the
judge, with provenance columns in the CSV / XLSX / Parquet exports and a diversity report (history and XLSX sheet).
The fake OpenRouter runs in its quality mode (some items score low): the judge's refusals are regenerated."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import openpyxl
import pyarrow.parquet as pq
import pytest

from tests.e2e import api
from tests.e2e.conftest import register_and_login
from tests.e2e.stack import Stack
from tests.e2e.test_compare_e2e import _report
from tests.e2e.test_seed_datasets_e2e import download

pytestmark = pytest.mark.e2e

PRODUCTS = 100
N = 60
MODELS = ["openai/gpt-4o-mini", "anthropic/claude-3.5-haiku", "meta-llama/llama-3.3-70b-instruct"]
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


def template(dataset_id: str) -> dict[str, Any]:
    return {
        "name": "Products: description and FAQ",
        "output": {"format": "json"},
        "prompts": {"user": "Describe {{ product }} ({{ price }} EUR) in a {{ tone }} tone."},
        "schema": DESCRIPTION,
        "model": {"provider": "openrouter", "id": MODELS[0]},
        "variables": {"tone": {"sampler": "category", "values": ["formal", "playful"], "weights": [1, 1]}},
        "seed": {"dataset_id": dataset_id, "sampling": "ordered", "columns": ["product", "price"]},
        "stages": [
            {
                "name": "faq",
                "prompts": {"user": "Write FAQ entries for: {{ main.description }}"},
                "schema": FAQ,
            }
        ],
        "judge": {
            "model": {"provider": "openrouter", "id": MODELS[2]},
            "rubric": "Are the description and its FAQ useful to a buyer?",
            "scores": {"usefulness": [1, 5]},
            "accept": "usefulness >= 3",
        },
    }


async def test_products_csv_to_judged_two_stage_items_on_the_compared_winner(
    stack: Stack, gateway: httpx.AsyncClient
) -> None:
    user = await register_and_login(gateway, "journey18")
    body = "product,price\n" + "".join(f"product {i},{10 + i}\n" for i in range(PRODUCTS))
    r = await gateway.post(
        "/datasets", params={"name": "products.csv"}, content=body.encode(),
        headers={**user.headers, "Content-Type": "text/csv"},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    dataset = r.json()
    assert dataset["rows"] == PRODUCTS
    r = await gateway.post("/templates", json=template(dataset["id"]), headers=user.headers)
    assert r.status_code == 201, r.text
    template_id = r.json()["id"]

    await api.fake_config(stack.fake_openrouter, rate_low_score=0.2)
    try:
        r = await gateway.post(
            "/generate/compare",
            json={"template_id": template_id, "models": MODELS, "sample": 10},
            headers=user.headers,
        )
        assert r.status_code == 202, r.text
        report = await _report(gateway, r.json()["links"]["self"], user.headers)
        assert report["status"] == "completed", report
        assert [row["model"]["id"] for row in report["models"]] == MODELS
        for row in report["models"]:
            assert row["succeeded"] == 10
            assert row["judge_score"] is not None
            assert 3 <= row["judge_score"] <= 5
            assert all(set(item["data"]) == {"description", "faq"} for item in row["items"])

        start = {**report["start"], "count": N, "concurrency": 6}
        assert start["model"]["id"] == report["winner"]["model"]["id"]
        r = await gateway.post("/generate", json=start, headers=user.headers)
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        job = await api.wait_job(gateway, job_id, user.headers)
    finally:
        await api.fake_config(stack.fake_openrouter, rate_low_score=0.0)

    assert job["status"] == "completed", job
    assert job["counts"]["succeeded"] == N
    items = await api.all_items(gateway, job_id, user.headers)
    assert [i["index"] for i in items] == list(range(N))
    for item in items:
        assert set(item["data"]) == {"description", "faq"}
        assert item["judge"]["scores"]["usefulness"] >= 3  # every item passed the judge
        prov = item["provenance"]
        assert prov["dataset_id"] == dataset["id"]
        assert 0 <= prov["seed_row"] < PRODUCTS
        assert prov["sampled"]["tone"] in ("formal", "playful")
        assert prov["model"] == start["model"]["id"]
    history = (await gateway.get(f"/history/{job_id}", headers=user.headers)).json()
    assert history["judge_usage"]["calls"] >= N
    assert history["diversity"]["items"] == N
    assert set(history["diversity"]["categories"]["tone"]["values"]) == {"formal", "playful"}

    rows = list(
        csv.DictReader(
            io.StringIO((await download(gateway, user.headers, job_id, "csv")).decode("utf-8-sig"))
        )
    )
    assert len(rows) == N
    assert all(row["_seed_row"].isdigit() and '"usefulness"' in row["_judge"] for row in rows)
    book = openpyxl.load_workbook(io.BytesIO(await download(gateway, user.headers, job_id, "xlsx")))
    header = [c.value for c in next(book["items"].iter_rows(max_row=1))]
    assert {"_dataset_id", "_seed_row", "_sampled", "_judge"} <= set(header)
    assert "diversity" in book.sheetnames
    table = pq.read_table(io.BytesIO(await download(gateway, user.headers, job_id, "parquet")))
    assert table.num_rows == N
    assert {"_seed_row", "_sampled", "_judge"} <= set(table.column_names)
