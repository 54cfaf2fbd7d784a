"""Authentication through the gateway: the real auth app (uvicorn, in-process, free port) behind the real gateway,
both on the local Mongo-wire server and Kafka with their own databases and consumer groups. The gateway verifies
tokens against the auth service's JWKS over HTTP, exactly as in production."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
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
CLIENT_IP = "203.0.113.9"
ADMIN_EMAIL = f"gw-admin-{uuid.uuid4().hex[:12]}@example.com"  # ADMIN_EMAILS of this module's auth service


def _email(prefix: str = "gw") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


@pytest.fixture(scope="module")
async def auth_url() -> AsyncIterator[str]:
    run = uuid.uuid4().hex[:10]
    settings = AuthSettings(
        mongo_db=f"llmts_auth_gw_{run}",
        kafka_client_id=f"auth-gw-{run}",
        log_json=False,
        argon2_time_cost=1,
        argon2_memory_cost_kib=8192,
        argon2_parallelism=1,
        login_max_failures_per_account_ip=3,
        login_max_failures_per_ip=5,
        register_max_per_ip=100_000,
        admin_emails=ADMIN_EMAIL,
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
        mongo_db=f"llmts_gateway_auth_{run}",
        kafka_group_id=f"gateway-auth-test-{run}",
        log_json=False,
    )
    app, _ctx, _runtime = gateway_bootstrap(settings)
    async with app.router.lifespan_context(app):
        yield app
    await _drop(settings)


def client_for(app: Any, ip: str = CLIENT_IP) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway.test")


@pytest.fixture
async def gateway(gateway_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(gateway_app) as client:
        yield client


async def _drop(settings: Any) -> None:
    """Drop a test database once its app has stopped (a running outbox relay would re-create it)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url.get_secret_value())
    try:
        await client.drop_database(settings.database_name)
    finally:
        await client.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_register_login_me_refresh_logout(gateway: httpx.AsyncClient) -> None:
    email = _email()
    resp = await gateway.post(
        "/auth/register", json={"email": email.upper(), "password": PASSWORD, "name": "Ada"}
    )
    assert resp.status_code == 201, resp.text
    user = resp.json()
    assert user["email"] == email
    assert "password_hash" not in resp.text

    resp = await gateway.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    assert resp.headers["cache-control"] == "no-store"
    pair = resp.json()
    assert pair["token_type"] == "bearer"

    me = await gateway.get("/auth/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json() == user

    resp = await gateway.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert resp.status_code == 200, resp.text
    pair2 = resp.json()
    assert (await gateway.get("/auth/me", headers=bearer(pair2["access_token"]))).status_code == 200

    replay = await gateway.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "refresh_token_reused"

    pair3 = (await gateway.post("/auth/login", json={"email": email, "password": PASSWORD})).json()
    resp = await gateway.post(
        "/auth/logout", json={"refresh_token": pair3["refresh_token"]}, headers=bearer(pair3["access_token"])
    )
    assert resp.status_code == 204
    resp = await gateway.post("/auth/refresh", json={"refresh_token": pair3["refresh_token"]})
    assert resp.status_code == 401


async def test_401_with_www_authenticate_without_a_valid_token(gateway: httpx.AsyncClient) -> None:
    cases: list[tuple[str, str, dict[str, str], Any]] = [
        ("GET", "/auth/me", {}, None),
        ("GET", "/auth/me", {"Authorization": "Bearer not-a-jwt"}, None),
        ("GET", "/auth/me", {"Authorization": "Basic dXNlcjpwYXNz"}, None),
        ("POST", "/auth/logout", {}, {"refresh_token": "x"}),
    ]
    for method, path, headers, body in cases:
        resp = await gateway.request(method, path, headers=headers, json=body)
        assert resp.status_code == 401, (path, resp.text)
        assert resp.headers["www-authenticate"].startswith("Bearer")
        assert set(resp.json()["error"]) == {"code", "message", "details", "correlation_id"}


async def test_errors_are_relayed_in_the_common_shape(gateway: httpx.AsyncClient) -> None:
    email = _email("err")
    assert (
        await gateway.post("/auth/register", json={"email": email, "password": PASSWORD})
    ).status_code == 201
    dup = await gateway.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert dup.status_code == 409
    assert dup.json()["error"]["code"] == "email_taken"
    weak = await gateway.post("/auth/register", json={"email": _email(), "password": "password123"})
    assert weak.status_code == 422
    assert weak.json()["error"]["details"]["reason"] == "common_password"
    bad = await gateway.post("/auth/login", json={"email": email})  # validated at the gateway
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "validation_error"
    wrong = await gateway.post("/auth/login", json={"email": email, "password": "not it at all"})
    unknown = await gateway.post("/auth/login", json={"email": _email("ghost"), "password": "not it at all"})
    assert wrong.status_code == unknown.status_code == 401
    bodies = [wrong.json(), unknown.json()]
    for body in bodies:  # the same body but for the correlation id, which names each request
        assert body["error"].pop("correlation_id")
    assert bodies[0] == bodies[1]


async def test_per_ip_throttling_uses_the_address_the_gateway_saw(gateway_app: Any) -> None:
    # every request comes from one peer address; a spoofed X-Forwarded-For does not give a fresh bucket
    statuses = []
    async with client_for(gateway_app, ip="192.0.2.77") as gateway:
        for i in range(6):
            resp = await gateway.post(
                "/auth/login",
                json={"email": _email("spray"), "password": "wrong password here"},
                headers={"X-Forwarded-For": f"198.51.100.{i}"},
            )
            statuses.append(resp.status_code)
    assert statuses[:5] == [401] * 5
    assert statuses[5] == 429
    assert int(resp.headers["retry-after"]) >= 1


async def test_oauth_routes_and_jwks_through_the_gateway(gateway: httpx.AsyncClient) -> None:
    resp = await gateway.get("/auth/oauth/github")  # not configured in this test
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "provider_not_configured"
    resp = await gateway.get("/auth/oauth/myspace")
    assert resp.status_code == 404
    jwks = (await gateway.get("/.well-known/jwks.json")).json()
    assert jwks["keys"]
    assert all("d" not in k for k in jwks["keys"])


async def test_openapi_documents_the_auth_routes(gateway: httpx.AsyncClient) -> None:
    spec = (await gateway.get("/openapi.json")).json()
    paths = spec["paths"]
    for path in (
        "/auth/register",
        "/auth/login",
        "/auth/refresh",
        "/auth/logout",
        "/auth/me",
        "/auth/oauth/{provider}",
        "/auth/oauth/{provider}/callback",
    ):
        assert path in paths, path
    login = paths["/auth/login"]["post"]
    assert "auth" in login["tags"]
    assert {"200", "401", "422", "429"} <= set(login["responses"])
    assert login["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/LoginRequest")
    assert paths["/auth/register"]["post"]["responses"]["201"]["content"]["application/json"]["schema"][
        "$ref"
    ].endswith("/UserPublic")
    assert "401" in paths["/auth/me"]["get"]["responses"]
