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
ITEM = "llmts.generation.item_generated"


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


def _watch(
    gateways: list[str], job_id: str, token: str
) -> tuple[list[asyncio.Task[api.Watch]], list[asyncio.Event]]:
    """A WebSocket client per gateway; each event is set once its client got the snapshot (it is subscribed)."""
    watching = [asyncio.Event() for _ in gateways]

    def on_first(event: asyncio.Event) -> Any:
        async def seen(_msg: dict[str, Any]) -> None:
            event.set()

        return seen

    tasks = [
        asyncio.create_task(api.watch_ws(gw, job_id, token, within=240.0, on_message=on_first(ev)))
        for gw, ev in zip(gateways, watching, strict=True)
    ]
    return tasks, watching


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
        # the provider is slow until both clients watch, so every item event comes after they subscribed
        await api.fake_config(replicas.fake_openrouter, latency_ms=4000)
        r = await b.post("/generate", json=body, headers=user.headers)
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        watchers, watching = _watch(gateways, job_id, user.access_token)
        await asyncio.wait_for(asyncio.gather(*(w.wait() for w in watching)), timeout=60.0)
        await api.fake_config(replicas.fake_openrouter, latency_ms=400)
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
        # one partition per job: the order every gateway read; a client's stream ends at the terminal event, so
        # an event published after it (the generator sometimes sends a last progress) is not one it can get
        end = next(i for i, e in enumerate(on_kafka) if e.get("type") in api.TERMINAL_EVENTS)
        order = [str(e["id"]) for e in on_kafka[: end + 1]]
        item_events = {str(e["id"]) for e in on_kafka[: end + 1] if e.get("type") == ITEM}
        assert len(item_events) >= N
        for gw, watch in zip(gateways, watches, strict=True):
            got = _event_ids(watch.events)
            first = min(order.index(i) for i in got if i in order)
            # every event from the first this client saw on (subscribed before any item event), none skipped
            missing = ({*order[first:]} | item_events) - got
            where = sorted((order.index(m), str(on_kafka[order.index(m)].get("type"))) for m in missing)
            assert not missing, (
                f"{gw} missed {len(missing)} of the job's {len(order)} events {where}; first seen #{first}, "
                f"reconnects {watch.reconnects}, terminal {watch.terminal}"
            )

        r = await a.post("/exports", json={"job_id": job_id, "format": "csv"}, headers=user.headers)
        assert r.status_code == 202, r.text
        export = await api.wait_export(b, r.json()["export_id"], user.headers)
        assert export["status"] == "ready", export
