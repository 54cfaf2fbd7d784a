"""The console's browser session through the gateway (``/auth/session/*``): the real auth app behind the real
gateway on the local Mongo-wire server. The refresh token lives only in an httpOnly ``SameSite=Strict`` cookie on
``/auth/session``; refresh and logout need ``X-CSRF-Token`` equal to the ``llmts_csrf`` cookie."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from tests.support.serve import serve

from llmts_auth.bootstrap import bootstrap as auth_bootstrap
from llmts_auth.settings import AuthSettings
from llmts_gateway.bootstrap import bootstrap as gateway_bootstrap
from llmts_gateway.settings import GatewaySettings

pytestmark = pytest.mark.connected

PASSWORD = "a perfectly fine passphrase"


def _email() -> str:
    return f"session-{uuid.uuid4().hex[:12]}@example.com"


async def _drop(settings: Any) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url.get_secret_value())
    try:
        await client.drop_database(settings.database_name)
    finally:
        await client.close()


@pytest.fixture(scope="module")
async def auth_url() -> AsyncIterator[str]:
    run = uuid.uuid4().hex[:10]
    settings = AuthSettings(
        mongo_db=f"llmts_auth_session_{run}",
        kafka_client_id=f"auth-session-{run}",
        log_json=False,
        argon2_time_cost=1,
        argon2_memory_cost_kib=8192,
        argon2_parallelism=1,
        register_max_per_ip=100_000,
        github_client_id="console-test",
        github_client_secret="console-test-secret",
    )
    app, _runtime = auth_bootstrap(settings)
    try:
        async with serve(app) as url:
            yield url
    finally:
        await _drop(settings)


@pytest.fixture(scope="module")
async def gateway_app(auth_url: str) -> AsyncIterator[Any]:
    run = uuid.uuid4().hex[:10]
    settings = GatewaySettings(
        auth_url=auth_url,
        jwks_url=f"{auth_url}/.well-known/jwks.json",
        mongo_db=f"llmts_gateway_session_{run}",
        kafka_group_id=f"gateway-session-test-{run}",
        log_json=False,
    )
    app, _ctx, _runtime = gateway_bootstrap(settings)
    async with app.router.lifespan_context(app):
        yield app
    await _drop(settings)


def _client(app: Any, base_url: str = "http://gateway.test") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 50000)), base_url=base_url
    )


@pytest.fixture
async def browser(gateway_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(gateway_app) as client:  # keeps cookies like a browser (path-scoped)
        yield client


def _set_cookies(resp: httpx.Response) -> dict[str, SimpleCookie]:
    cookies: dict[str, SimpleCookie] = {}
    for header in resp.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        cookies[next(iter(jar))] = jar
    return cookies


async def _register(client: httpx.AsyncClient) -> tuple[str, httpx.Response]:
    email = _email()
    resp = await client.post("/auth/session/register", json={"email": email, "password": PASSWORD})
    assert resp.status_code == 201, resp.text
    return email, resp


async def test_register_answers_only_the_access_token_and_sets_the_cookies(
    browser: httpx.AsyncClient,
) -> None:
    email, resp = await _register(browser)
    body = resp.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "csrf_token"}
    assert resp.headers["cache-control"] == "no-store"
    cookies = _set_cookies(resp)
    refresh = cookies["llmts_refresh"]["llmts_refresh"]
    assert refresh["httponly"] is True
    assert refresh["samesite"].lower() == "strict"
    assert refresh["path"] == "/auth/session"
    assert not refresh["secure"]  # plain http here
    assert refresh.value not in resp.text  # never in a body
    csrf = cookies["llmts_csrf"]["llmts_csrf"]
    assert not csrf["httponly"]  # the console reads it
    assert csrf["samesite"].lower() == "strict"
    assert csrf.value == body["csrf_token"]
    me = await browser.get("/auth/session", headers={"authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["email"] == email


async def test_refresh_needs_the_csrf_header_and_rotates_the_cookie(browser: httpx.AsyncClient) -> None:
    _, resp = await _register(browser)
    old = browser.cookies.get("llmts_refresh", path="/auth/session")
    csrf = resp.json()["csrf_token"]
    for headers in ({}, {"x-csrf-token": "not-the-cookie"}):
        refused = await browser.post("/auth/session/refresh", headers=headers)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "csrf_failed"
    ok = await browser.post("/auth/session/refresh", headers={"x-csrf-token": csrf})
    assert ok.status_code == 200, ok.text
    assert ok.json()["access_token"]
    assert browser.cookies.get("llmts_refresh", path="/auth/session") != old
    # the spent token, replayed (e.g. a stolen cookie), is refused and revokes its family
    browser.cookies.set("llmts_refresh", old or "", domain="gateway.test", path="/auth/session")
    replay = await browser.post("/auth/session/refresh", headers={"x-csrf-token": ok.json()["csrf_token"]})
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] in {"refresh_token_reused", "invalid_refresh_token"}


async def test_refresh_without_a_session_cookie_is_401(gateway_app: Any) -> None:
    async with _client(gateway_app) as client:
        client.cookies.set("llmts_csrf", "abc", domain="gateway.test", path="/")
        resp = await client.post("/auth/session/refresh", headers={"x-csrf-token": "abc"})
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "invalid_refresh_token"


async def test_login_errors_are_relayed_and_login_sets_a_session(browser: httpx.AsyncClient) -> None:
    email, _resp = await _register(browser)
    wrong = await browser.post(
        "/auth/session/login", json={"email": email, "password": "wrong password here"}
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_credentials"
    assert "set-cookie" not in wrong.headers
    taken = await browser.post("/auth/session/register", json={"email": email, "password": PASSWORD})
    assert taken.status_code == 409
    ok = await browser.post("/auth/session/login", json={"email": email, "password": PASSWORD})
    assert ok.status_code == 200
    assert "llmts_refresh" in _set_cookies(ok)


async def test_logout_revokes_the_session_and_clears_the_cookies(browser: httpx.AsyncClient) -> None:
    _, resp = await _register(browser)
    body = resp.json()
    cookie = browser.cookies.get("llmts_refresh", path="/auth/session")
    refused = await browser.post("/auth/session/logout")
    assert refused.status_code == 403
    out = await browser.post(
        "/auth/session/logout",
        headers={"x-csrf-token": body["csrf_token"], "authorization": f"Bearer {body['access_token']}"},
    )
    assert out.status_code == 204
    cleared = _set_cookies(out)
    assert cleared["llmts_refresh"]["llmts_refresh"]["max-age"] == "0"
    assert cleared["llmts_csrf"]["llmts_csrf"]["max-age"] == "0"
    browser.cookies.set("llmts_refresh", cookie or "", domain="gateway.test", path="/auth/session")
    browser.cookies.set("llmts_csrf", "x", domain="gateway.test", path="/")
    again = await browser.post("/auth/session/refresh", headers={"x-csrf-token": "x"})
    assert again.status_code == 401  # the family was revoked by the auth service


async def test_cookies_are_secure_over_https(gateway_app: Any) -> None:
    async with _client(gateway_app, base_url="https://gateway.test") as client:
        _, resp = await _register(client)
    cookies = _set_cookies(resp)
    assert cookies["llmts_refresh"]["llmts_refresh"]["secure"] is True
    assert cookies["llmts_csrf"]["llmts_csrf"]["secure"] is True


async def test_adopt_moves_an_oauth_refresh_token_into_the_cookie(browser: httpx.AsyncClient) -> None:
    email, _resp = await _register(browser)
    pair = (await browser.post("/auth/login", json={"email": email, "password": PASSWORD})).json()
    refused = await browser.post("/auth/session/adopt", json={"refresh_token": pair["refresh_token"]})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    ok = await browser.post(
        "/auth/session/adopt", json={"refresh_token": pair["refresh_token"]}, headers={"x-csrf-token": "1"}
    )
    assert ok.status_code == 200, ok.text
    assert pair["refresh_token"] not in ok.text
    assert _set_cookies(ok)["llmts_refresh"]["llmts_refresh"].value != pair["refresh_token"]  # spent, rotated


async def test_configured_oauth_providers_are_listed(browser: httpx.AsyncClient) -> None:
    resp = await browser.get("/auth/oauth")
    assert resp.status_code == 200
    assert resp.json() == {"providers": ["github"]}
