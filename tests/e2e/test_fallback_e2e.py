"""A job with a fallback chain survives its first model disappearing: the job starts on the (fake) Ollama, the
Ollama process is killed mid-job, the remaining items go to the next model of the chain (the fake OpenRouter), and
the job still ends with exactly N valid items, each saying which model produced it — in the result and in a CSV
export (its ``_model`` column, shown by default because the job's items came from two models)."""

from __future__ import annotations

import asyncio
import csv
import io
from collections import Counter

import httpx
import pytest

from tests.e2e import api
from tests.e2e.conftest import register_and_login
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e

N = 40
PRIMARY = "llama3.2:latest"
BACKUP = "openai/gpt-4o-mini"


async def test_job_moves_to_the_next_model_when_its_model_disappears(
    stack: Stack, gateway: httpx.AsyncClient
) -> None:
    user = await register_and_login(gateway, "fallback")
    r = await gateway.post("/templates/examples/quiz/import", headers=user.headers)
    assert r.status_code == 201, r.text
    template_id = r.json()["template"]["id"]
    await api.fake_config(stack.fake_ollama, latency_ms=150)
    try:
        r = await gateway.post(
            "/generate",
            json={
                "template_id": template_id,
                "count": N,
                "concurrency": 4,
                "model": {"provider": "ollama", "id": PRIMARY, "fallback": [{"id": BACKUP}]},
            },
            headers=user.headers,
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        for _ in range(600):  # until the first model has produced something (bounded: 60 s)
            job = (await gateway.get(f"/generate/{job_id}", headers=user.headers)).json()
            if job["counts"]["succeeded"] >= 4:
                break
            await asyncio.sleep(0.1)
        stack.procs["fake_ollama"].kill()
        print(f"fake Ollama killed at {job['counts']['succeeded']}/{N} items")

        job = await api.wait_job(gateway, job_id, user.headers, within=120)
    finally:
        stack.restart("fake_ollama")
    assert job["status"] == "completed", job
    assert job["counts"]["succeeded"] == N
    (switch,) = job["model_switches"]
    assert switch["reason"] in ("unreachable", "unavailable"), switch
    assert (switch["from"]["id"], switch["to"]["id"]) == (PRIMARY, BACKUP)
    assert job["model_active"]["id"] == BACKUP
    items = await api.all_items(gateway, job_id, user.headers)
    assert [i["index"] for i in items] == list(range(N))
    by_model = Counter(i["model"]["id"] for i in items)
    assert by_model[PRIMARY] >= 4
    assert by_model[PRIMARY] + by_model[BACKUP] == N
    history = (await gateway.get(f"/history/{job_id}", headers=user.headers)).json()
    used = {row["id"]: row for row in history["attempts"]["by_model"]}
    assert used[PRIMARY]["valid"] == by_model[PRIMARY]
    assert used[BACKUP]["valid"] == by_model[BACKUP]
    print(f"items by model: {dict(by_model)}; switch: {switch['reason']} ({switch['detail'][:80]})")

    r = await gateway.post("/exports", json={"job_id": job_id, "format": "csv"}, headers=user.headers)
    assert r.status_code == 202, r.text
    export_id = r.json()["export_id"]
    export = await api.wait_export(gateway, export_id, user.headers)
    assert export["status"] == "ready", export
    r = await gateway.get(f"/exports/{export_id}/download", headers=user.headers)
    assert r.status_code == 200, r.text
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8"))))
    assert [row["_model"] for row in rows] == [i["model"]["id"] for i in items]
    assert Counter(row["_model"] for row in rows) == by_model
    assert [int(row["_index"]) for row in rows] == list(range(N))
