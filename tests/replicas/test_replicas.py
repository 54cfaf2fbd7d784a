"""Multi-replica tier (issue 16): two gateways, two generators and two exporters as separate processes.

- WebSocket clients on both gateways get every event of a job (each gateway replica reads every partition of the
  event topics: no shared consumer group splitting the stream between them);
- one generator is killed (-9) in the middle of the job and the other one finishes it with exactly N items;
- the export of the job is made by one of the two exporters and downloads through either gateway.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from llmts_common.mongo import create_client
from tests.e2e import api
from tests.e2e.conftest import register_and_login
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.replicas, pytest.mark.timeout(420)]

N = 80
STARTED = "llmts.generation.started"


async def _lease_holder(stack: Stack, job_id: str, min_items: int, within: float = 90.0) -> str:
    """The generator process running the job, once it has ``min_items`` items (and is not finished)."""
    mongo = create_client(stack.procs["generator"].env["MONGO_URL"])
    jobs = mongo[stack.procs["generator"].env["MONGO_DB"]]["generations"]
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            doc = await jobs.find_one({"_id": job_id}) or {}
            owner = str(doc.get("lease_owner") or "")
            if (doc.get("counts") or {}).get("succeeded", 0) >= min_items and owner:
                assert not doc.get("settled"), "the job ended before a generator could be killed"
                return "generator" if owner.startswith("generator-a/") else "generator_b"
            await asyncio.sleep(0.1)
    finally:
        await mongo.close()
    raise AssertionError(f"job {job_id} never reached {min_items} items")


def _event_ids(events: list[dict[str, Any]]) -> set[str]:
    return {str(e["id"]) for e in events if e.get("type") not in (None, "snapshot", "error") and "id" in e}


async def test_both_gateways_see_every_event_and_a_killed_generator_is_taken_over(replicas: Stack) -> None:
    gateways = [replicas.procs["gateway"].url, replicas.procs["gateway_b"].url]
    async with (
        httpx.AsyncClient(base_url=gateways[0], timeout=60.0) as a,
        httpx.AsyncClient(base_url=gateways[1], timeout=60.0) as b,
    ):
        user = await register_and_login(a, "replicas")
        r = await a.post("/templates/examples/quiz/import", headers=user.headers)
        assert r.status_code == 201, r.text
        body = {
            "template_id": r.json()["template"]["id"],
            "count": N,
            "concurrency": 4,
            "model": {"id": "openai/gpt-4o-mini"},
        }
        r = await b.post("/generate", json=body, headers=user.headers)
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        watchers = [
            asyncio.create_task(api.watch_ws(gw, job_id, user.access_token, within=240.0)) for gw in gateways
        ]
        victim = await _lease_holder(replicas, job_id, min_items=12)
        replicas.procs[victim].kill()

        watches = await asyncio.gather(*watchers)
        for gw, watch in zip(gateways, watches, strict=True):
            assert watch.terminal is not None, f"{gw}: no terminal message"
            assert (watch.terminal.get("data") or {}).get("status") == "completed", (gw, watch.terminal)

        job = await api.wait_job(b, job_id, user.headers, within=60.0)
        assert job["status"] == "completed", job
        items = await api.all_items(a, job_id, user.headers)
        assert len(items) == N
        assert sorted(item["index"] for item in items) == list(range(N))

        on_kafka = await api.job_events(job_id, topic=replicas.topic("generation.events"), within=60.0)
        types = {str(e["id"]): f"#{i} {e.get('type')}" for i, e in enumerate(on_kafka)}
        expected = {str(e["id"]) for e in on_kafka if e.get("type") != STARTED}
        assert len(expected) >= N  # every item event at least
        for gw, watch in zip(gateways, watches, strict=True):
            missing = expected - _event_ids(watch.events)
            assert not missing, (
                f"{gw} missed {len(missing)} of the job's {len(on_kafka)} events: "
                f"{sorted(types[m] for m in missing)}; terminal {watch.terminal}"
            )

        r = await a.post("/exports", json={"job_id": job_id, "format": "csv"}, headers=user.headers)
        assert r.status_code == 202, r.text
        export = await api.wait_export(b, r.json()["export_id"], user.headers)
        assert export["status"] == "ready", export
