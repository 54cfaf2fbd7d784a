"""One job's trace spans the services it crosses: gateway → Kafka → generator (→ provider call) → exporter.

Every service of the e2e stack exports its spans over OTLP/HTTP to an in-memory collector (tests/fakes/otlp.py);
the client starts the trace itself with a W3C ``traceparent`` header on ``POST /generate``.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import httpx

from tests.e2e.conftest import register_and_login
from tests.e2e.stack import Stack


async def _poll(fn: Any, within: float = 90.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        value = await fn()
        if value:
            return value
        await asyncio.sleep(0.3)
    raise AssertionError("condition not met in time")


async def test_one_job_trace_spans_gateway_generator_and_exporter(
    stack: Stack, gateway: httpx.AsyncClient
) -> None:
    user = await register_and_login(gateway, "tracer")
    examples = (await gateway.get("/templates/examples", headers=user.headers)).json()
    example_id = (examples["items"] if isinstance(examples, dict) else examples)[0]["id"]
    r = await gateway.post(f"/templates/examples/{example_id}/import", headers=user.headers)
    assert r.status_code in (200, 201), r.text
    template_id = r.json()["template"]["id"]

    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    r = await gateway.post(
        "/generate",
        json={
            "template_id": template_id,
            "count": 3,
            "model": {"provider": "openrouter", "id": "openai/gpt-4o-mini"},
        },
        headers={**user.headers, "traceparent": traceparent},
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]

    async def finished() -> bool:
        body = (await gateway.get(f"/generate/{job_id}", headers=user.headers)).json()
        return body.get("status") in ("completed", "completed_with_errors", "stopped", "failed", "cancelled")

    await _poll(finished)

    async with httpx.AsyncClient(base_url=stack.fake_otlp, timeout=10) as otlp:

        async def services_in_trace() -> set[str] | None:
            spans = (await otlp.get("/spans", params={"trace_id": trace_id})).json()
            names = {s["service"] for s in spans}
            return names if {"gateway", "generator", "exporter"} <= names else None

        services = await _poll(services_in_trace, within=60)
        spans = (await otlp.get("/spans", params={"trace_id": trace_id})).json()
    assert {"gateway", "generator", "exporter"} <= services
    # the provider HTTP call is part of the same trace (a client span of the generator)
    assert any(s["service"] == "generator" and s["kind"] == 3 for s in spans), spans  # 3 = SPAN_KIND_CLIENT
