"""Seed datasets, samplers, provenance and the diversity report end to end (issue 18 #1–#3, #5), through the gateway
only: a CSV of products is uploaded, a template samples a tone (weights) and takes one product row per item; the job
gives every item its row and tone (result provenance), history shows the diversity report, and the CSV / XLSX /
Parquet exports carry the provenance columns (the XLSX a diversity sheet too). A job whose dataset was deleted
fails with dataset_not_found."""

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

pytestmark = pytest.mark.e2e

N = 20
ROWS = 7
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"title": {"type": "string", "minLength": 3}},
    "required": ["title"],
    "additionalProperties": False,
}


def template(dataset_id: str) -> dict[str, Any]:
    return {
        "name": "Product blurbs",
        "output": {"format": "json"},
        "prompts": {
            "user": "Write a {{ tone }} title for {{ product }} ({{ price }} EUR), item {{ index }}."
        },
        "schema": SCHEMA,
        "model": {"provider": "openrouter", "id": "openai/gpt-4o-mini"},
        "variables": {"tone": {"sampler": "category", "values": ["formal", "friendly"], "weights": [3, 1]}},
        "seed": {"dataset_id": dataset_id, "sampling": "shuffle", "columns": ["product", "price"]},
    }


async def upload(gateway: httpx.AsyncClient, headers: dict[str, str]) -> str:
    body = "product,price,internal\n" + "".join(f"p{i},{10 + i},x\n" for i in range(ROWS))
    r = await gateway.post(
        "/datasets", params={"name": "products.csv"}, content=body.encode(),
        headers={**headers, "Content-Type": "text/csv"},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def download(gateway: httpx.AsyncClient, headers: dict[str, str], job_id: str, fmt: str) -> bytes:
    options = {"provenance": True, "diversity": True}
    r = await gateway.post(
        "/exports", headers=headers, json={"job_id": job_id, "format": fmt, "options": options}
    )
    assert r.status_code == 202, (fmt, r.text)
    export_id = r.json()["export_id"]
    info = await api.wait_export(gateway, export_id, headers)
    assert info["status"] == "ready", (fmt, info)
    r = await gateway.get(f"/exports/{export_id}/download", headers=headers)
    assert r.status_code == 200, (fmt, r.text[:300])
    return r.content


async def test_items_carry_their_row_and_sampled_tone_into_results_history_and_exports(
    stack: Stack, gateway: httpx.AsyncClient
) -> None:
    await api.require_routes(gateway, [("POST", "/datasets"), ("POST", "/templates"), ("POST", "/generate")])
    user = await register_and_login(gateway, "seeds")
    dataset_id = await upload(gateway, user.headers)
    r = await gateway.post("/templates", json=template(dataset_id), headers=user.headers)
    assert r.status_code == 201, r.text
    template_id = r.json()["id"]

    r = await gateway.post(
        "/generate",
        json={"template_id": template_id, "count": N, "concurrency": 4, "seed": 5},
        headers=user.headers,
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    job = await api.wait_job(gateway, job_id, user.headers)
    assert job["status"] == "completed", job

    items = await api.all_items(gateway, job_id, user.headers)
    assert len(items) == N
    for item in items:
        prov = item["provenance"]
        assert prov["dataset_id"] == dataset_id
        assert 0 <= prov["seed_row"] < ROWS
        assert prov["sampled"]["tone"] in ("formal", "friendly")
        assert prov["model"] == "openai/gpt-4o-mini"
    by_target = {i["inputs"]["target"]: i["provenance"]["seed_row"] for i in items}
    assert sorted(by_target[t] for t in range(ROWS)) == list(range(ROWS))  # shuffle: every row once per pass
    # the template preview with sample_seed 5 shows what this job (seed 5) gave: each item's row and sampled values
    r = await gateway.post(
        "/templates/preview",
        json={"template_id": template_id, "index": 1, "items": 6, "sample_seed": 5},
        headers=user.headers,
    )
    assert r.status_code == 200, r.text
    sampled = {i["inputs"]["target"]: i["provenance"]["sampled"] for i in items}
    shown = r.json()["items"]
    assert [p["index"] for p in shown] == list(range(1, 7))
    assert [p["seed_row_index"] for p in shown] == [by_target[t] for t in range(1, 7)]
    assert [p["sampled"] for p in shown] == [sampled[t] for t in range(1, 7)]

    r = await gateway.get(f"/history/{job_id}", headers=user.headers)
    assert r.status_code == 200, r.text
    report = r.json()["diversity"]
    assert report["items"] == N
    tone = report["categories"]["tone"]
    assert tone["values"]["formal"]["target"] == 0.75
    assert tone["values"]["formal"]["count"] + tone["values"]["friendly"]["count"] == N
    assert 0 < report["distinct_1"] <= 1

    rows = list(
        csv.DictReader(
            io.StringIO((await download(gateway, user.headers, job_id, "csv")).decode("utf-8-sig"))
        )
    )
    assert len(rows) == N
    assert all(row["_dataset_id"] == dataset_id and row["_seed_row"].isdigit() for row in rows)
    assert all('"tone"' in row["_sampled"] for row in rows)
    book = openpyxl.load_workbook(io.BytesIO(await download(gateway, user.headers, job_id, "xlsx")))
    header = [c.value for c in next(book["items"].iter_rows(max_row=1))]
    assert {"_seed_row", "_sampled", "_dataset_id"} <= set(header)
    assert "diversity" in book.sheetnames
    table = pq.read_table(io.BytesIO(await download(gateway, user.headers, job_id, "parquet")))
    assert str(table.schema.field("_seed_row").type) == "int64"
    assert sorted(set(table.column("_seed_row").to_pylist())) == list(range(ROWS))
    assert b"llmts.diversity" in table.schema.metadata


async def test_a_job_whose_dataset_was_deleted_fails_with_dataset_not_found(
    stack: Stack, gateway: httpx.AsyncClient
) -> None:
    user = await register_and_login(gateway, "seeds-gone")
    dataset_id = await upload(gateway, user.headers)
    r = await gateway.post("/templates", json=template(dataset_id), headers=user.headers)
    assert r.status_code == 201, r.text
    template_id = r.json()["id"]
    r = await gateway.delete(f"/datasets/{dataset_id}", headers=user.headers)
    assert r.status_code == 204, r.text
    r = await gateway.post("/generate", json={"template_id": template_id, "count": 3}, headers=user.headers)
    assert r.status_code == 202, r.text
    job = await api.wait_job(gateway, r.json()["job_id"], user.headers)
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "dataset_not_found"
    assert job["counts"]["attempts"] == 0
