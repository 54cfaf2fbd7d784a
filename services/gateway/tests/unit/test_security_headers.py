"""Security headers on every gateway answer; Swagger UI and ReDoc served with their assets by the gateway."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from llmts_gateway.bootstrap import bootstrap
from llmts_gateway.entrypoints.security import API_CSP, SecurityHeaders
from llmts_gateway.settings import GatewaySettings


async def _client(**settings: object) -> AsyncIterator[httpx.AsyncClient]:
    app, _ctx, _runtime = bootstrap(GatewaySettings(**settings))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client  # no lifespan: nothing here needs Kafka or Mongo


@pytest.fixture
async def gateway() -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client():
        yield client


def _assert_common(resp: httpx.Response) -> None:
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in resp.headers["content-security-policy"]
    assert "server" not in resp.headers


async def test_every_answer_has_the_security_headers(gateway: httpx.AsyncClient) -> None:
    answers = [
        await gateway.get("/health"),
        await gateway.get("/openapi.json"),
        await gateway.get("/nowhere"),  # 404 error body
        await gateway.get("/providers"),  # 401 error body
        await gateway.request("GET", "/health", content=b"x" * 20_000),  # 413 from the edge middleware
    ]
    assert [r.status_code for r in answers] == [200, 200, 404, 401, 413]
    for resp in answers:
        _assert_common(resp)
        assert resp.headers["content-security-policy"] == API_CSP
        assert "strict-transport-security" not in resp.headers


async def test_hsts_only_when_configured() -> None:
    async for client in _client(hsts_max_age_seconds=31_536_000):
        resp = await client.get("/health")
    assert resp.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_everything_from_the_gateway(gateway: httpx.AsyncClient, page: str) -> None:
    resp = await gateway.get(page)
    assert resp.status_code == 200
    _assert_common(resp)
    html = resp.text
    assert "cdn.jsdelivr" not in html
    assert "googleapis" not in html
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources
    assert all(s.startswith("/docs/assets/") for s in sources), sources
    policy = resp.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "https:" not in policy
    for script in re.findall(r"<script>(.*?)</script>", html, re.DOTALL):  # inline scripts allowed by hash
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    for source in sources:
        asset = await gateway.get(source)
        assert asset.status_code == 200, source
        assert len(asset.content) > 1000
        _assert_common(asset)


async def test_only_the_listed_assets_are_served(gateway: httpx.AsyncClient) -> None:
    js = await gateway.get("/docs/assets/swagger-ui-bundle.js")
    assert js.headers["content-type"].startswith("text/javascript")
    assert "SwaggerUIBundle" in js.text
    for name in ("core.py", "..%2F__init__.py", "%2E%2E", "LICENSE"):
        resp = await gateway.get(f"/docs/assets/{name}")
        assert resp.status_code == 404, name
        assert resp.json()["error"]["code"] == "not_found"


async def test_an_upstream_server_banner_is_removed() -> None:
    async def upstream_like(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"server", b"uvicorn")]})
        await send({"type": "http.response.body", "body": b"{}"})

    wrapped = SecurityHeaders(upstream_like, hsts_max_age=0, docs_paths=frozenset(), docs_policy="")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="http://g") as client:
        resp = await client.get("/x")
    assert "server" not in resp.headers
    assert resp.headers["x-content-type-options"] == "nosniff"
