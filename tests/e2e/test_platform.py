"""The platform holds together: all six services run, report ready, and the gateway sees every dependency."""

from __future__ import annotations

import httpx

from tests.e2e.stack import SERVICES, Stack


async def test_every_service_is_ready(stack: Stack) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for svc in SERVICES:
            r = await client.get(stack.url(svc) + "/ready")
            assert r.status_code == 200, (svc, r.text)
            checks = r.json()["checks"]
            assert checks["mongo"]["ready"] is True
            assert checks["kafka"]["ready"] is True
            assert (await client.get(stack.url(svc) + "/health")).json() == {"status": "ok"}


async def test_gateway_ready_reports_each_service(gateway: httpx.AsyncClient) -> None:
    r = await gateway.get("/ready")
    assert r.status_code == 200, r.text
    checks = r.json()["checks"]
    for name in ("mongo", "kafka", "auth", "catalog", "templates", "generator", "exporter"):
        assert checks[name]["ready"] is True, name


async def test_openapi_docs_are_served(gateway: httpx.AsyncClient) -> None:
    r = await gateway.get("/docs")
    assert r.status_code == 200
    assert "swagger" in r.text.lower()
    spec = (await gateway.get("/openapi.json")).json()
    assert spec["info"]["title"] == "LLM Template System API"


async def test_unknown_route_has_the_error_body(gateway: httpx.AsyncClient) -> None:
    r = await gateway.get("/no/such/route")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
