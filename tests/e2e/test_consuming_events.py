"""Another team's view of the events, on a real stack: examples/consumer.py (written from
docs/consuming-events.md) follows a job and downloads its export through the signed link of ExportReady; every
record of the job is a structured-mode CloudEvent with a traceparent and one correlation id; GenerationStarted
carries the template's name, output format and item schema; a progress event never counts an item published
after it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from cloudevents.core.bindings import kafka as ce_kafka

from llmts_common.kafka_security import kafka_client_options
from tests.e2e import api
from tests.e2e.conftest import register_and_login
from tests.e2e.stack import ROOT, Stack

pytestmark = pytest.mark.e2e

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
N = 12


async def _records(topic: str, key: str, within: float = 30.0) -> list[Any]:
    """Every record of ``topic`` with ``key``, from the beginning to the current end."""
    consumer = AIOKafkaConsumer(topic, **kafka_client_options(), group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    out: list[Any] = []
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            out += [r for records in batches.values() for r in records if r.key == key.encode()]
            if not batches and consumer.assignment():
                ends = await consumer.end_offsets(list(consumer.assignment()))
                if all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                    break
    finally:
        await consumer.stop()
    return out


def _check_wire(record: Any) -> dict[str, Any]:
    """One record as another team reads it: a structured-mode CloudEvent, identical through the official SDK."""
    sdk = ce_kafka.from_kafka_event(ce_kafka.KafkaMessage(dict(record.headers), record.key, record.value))
    headers = {k: v.decode() for k, v in record.headers}
    assert headers["content-type"] == "application/cloudevents+json"
    assert not [h for h in headers if h.lower().startswith("ce_")]
    assert [h for h in headers if "correlation" in h.lower()] == ["correlation_id"]
    event: dict[str, Any] = json.loads(record.value)
    assert headers["traceparent"] == event["traceparent"]
    assert headers["correlation_id"] == event["correlationid"]
    for name in ("id", "specversion", "type", "source", "time", "dataschema"):
        assert event[name], name
    assert (sdk.get_id(), sdk.get_type(), sdk.get_source()) == (event["id"], event["type"], event["source"])
    assert sdk.get_time() == datetime.fromisoformat(event["time"])
    assert sdk.get_data() == event["data"]
    return event


async def _job(gateway: httpx.AsyncClient, headers: dict[str, str]) -> str:
    r = await gateway.post("/templates/examples/quiz/import", headers=headers)
    assert r.status_code == 201, r.text
    body = {"template_id": r.json()["template"]["id"], "count": N, "model": {"id": "openai/gpt-4o-mini"}}
    r = await gateway.post("/generate", json=body, headers=headers)
    assert r.status_code == 202, r.text
    job_id: str = r.json()["job_id"]
    assert (await api.wait_job(gateway, job_id, headers))["status"] == "completed"
    return job_id


async def test_the_example_consumer_downloads_the_export_of_a_job(
    stack: Stack, gateway: httpx.AsyncClient, tmp_path: Path
) -> None:
    user = await register_and_login(gateway, "consumer")
    job_id = await _job(gateway, user.headers)
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "KAFKA_TOPIC_PREFIX": stack.topic("")}
    consumer = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "examples" / "consumer.py"), job_id, str(tmp_path), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        r = await gateway.post("/exports", json={"job_id": job_id, "format": "csv"}, headers=user.headers)
        assert r.status_code == 202, r.text
        export_id = r.json()["export_id"]
        output, _ = await asyncio.wait_for(consumer.communicate(), timeout=120)
    finally:
        if consumer.returncode is None:
            consumer.kill()
            await consumer.wait()
    assert consumer.returncode == 0, output.decode()
    assert "llmts.generation.completed" in output.decode()
    downloaded = tmp_path / f"{export_id}.csv"
    status = await api.wait_export(gateway, export_id, user.headers)
    assert hashlib.sha256(downloaded.read_bytes()).hexdigest() == status["sha256"]
    via_rest = await gateway.get(f"/exports/{export_id}/download", headers=user.headers)
    assert downloaded.read_bytes() == via_rest.content

    ready = [_check_wire(r) for r in await _records(stack.topic("export.events"), export_id)]
    assert [e["type"] for e in ready] == ["llmts.export.ready"]
    url = ready[0]["data"]["download_url"]
    assert url.startswith(f"{stack.gateway}/downloads/{export_id}?")
    assert (await gateway.get(url.replace("signature=", "signature=0"))).status_code == 403
    schema = await gateway.get(ready[0]["dataschema"].removeprefix(stack.gateway))
    assert schema.status_code == 200
    assert schema.json()["x-llmts-type"] == "llmts.export.ready"


async def test_a_jobs_records_are_complete_cloudevents_in_a_consumable_order(
    stack: Stack, gateway: httpx.AsyncClient
) -> None:
    user = await register_and_login(gateway, "records")
    job_id = await _job(gateway, user.headers)
    events = [_check_wire(r) for r in await _records(stack.topic("generation.events"), job_id)]
    started = next(e["data"] for e in events if e["type"] == "llmts.generation.started")
    assert started["template_name"]
    assert started["output_format"] == "json"
    assert started["item_schema"]["type"] == "object"
    assert started["item_schema_enforced"] is False  # the quiz example validates with custom rules only
    items: set[int] = set()
    rejected = 0
    progress = 0
    for event in events:  # one partition per job: this is the order a consumer reads
        data = event["data"]
        if event["type"] == "llmts.generation.item_generated":
            items.add(data["index"])
        elif event["type"] == "llmts.generation.item_rejected":
            rejected += 1
        elif event["type"] == "llmts.generation.progress":
            progress += 1
            assert data["succeeded"] <= len(items), (data, sorted(items))
            assert data["rejected"] <= rejected
    assert len(items) == N
    assert progress >= 1
    assert events[-1]["type"] == "llmts.generation.completed"  # nothing after the terminal event
