"""The browser-session routes' own checks, with no auth service behind the gateway (nothing listens on its URL):
CSRF and cookie checks answer before any upstream call, an unreachable auth service is a 503, and logout clears
the cookies even then."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from llmts_gateway.bootstrap import bootstrap
from llmts_gateway.settings import GatewaySettings


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nothing listens there


BOTH = "llmts_refresh=r1; llmts_csrf=c1"  # what a browser sends to /auth/session/*


@pytest.fixture
async def gateway() -> AsyncIterator[httpx.AsyncClient]:
    port = _closed_port()
    app, _ctx, _runtime = bootstrap(
        GatewaySettings(auth_url=f"http://127.0.0.1:{port}", upstream_timeout_seconds=2)
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client  # no lifespan: these routes need neither Kafka nor Mongo


async def test_csrf_is_checked_before_anything_else(gateway: httpx.AsyncClient) -> None:
    gateway.headers["cookie"] = BOTH
    for route in ("/auth/session/refresh", "/auth/session/logout"):
        for headers in ({}, {"x-csrf-token": "c2"}, {"x-csrf-token": ""}):
            resp = await gateway.post(route, headers=headers)
            assert resp.status_code == 403, (route, headers)
            assert resp.json()["error"]["code"] == "csrf_failed"
    adopt = await gateway.post("/auth/session/adopt", json={"refresh_token": "r"})
    assert adopt.status_code == 403


async def test_refresh_without_the_cookie_is_401(gateway: httpx.AsyncClient) -> None:
    gateway.headers["cookie"] = "llmts_csrf=c1"
    resp = await gateway.post("/auth/session/refresh", headers={"x-csrf-token": "c1"})
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "invalid_refresh_token"


async def test_an_unreachable_auth_service_is_503(gateway: httpx.AsyncClient) -> None:
    resp = await gateway.post("/auth/session/login", json={"email": "a@example.com", "password": "x" * 12})
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "service_unavailable"
    assert "set-cookie" not in resp.headers


async def test_invalid_bodies_are_422(gateway: httpx.AsyncClient) -> None:
    for route, body in (
        ("/auth/session/login", {"email": "a@example.com"}),
        ("/auth/session/register", {"email": "a@example.com", "password": "p" * 12, "extra": 1}),
        ("/auth/session/adopt", {"refresh_token": ""}),
    ):
        resp = await gateway.post(route, json=body, headers={"x-csrf-token": "1"})
        assert resp.status_code == 422, route
        assert resp.json()["error"]["code"] == "validation_error"


async def test_logout_clears_the_cookies_even_when_the_auth_service_is_down(
    gateway: httpx.AsyncClient,
) -> None:
    gateway.headers["cookie"] = BOTH
    resp = await gateway.post(
        "/auth/session/logout", headers={"x-csrf-token": "c1", "authorization": "Bearer some.access.token"}
    )
    assert resp.status_code == 204
    cleared = resp.headers.get_list("set-cookie")
    assert any(
        c.startswith("llmts_refresh=") and "Max-Age=0" in c and "Path=/auth/session" in c for c in cleared
    )
    assert any(c.startswith("llmts_csrf=") and "Max-Age=0" in c for c in cleared)
