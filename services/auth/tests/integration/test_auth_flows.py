"""The auth service end to end against the real Mongo-wire server and Kafka: register/login/refresh/logout/me,
rotation and reuse detection, throttling, UserRegistered on auth.events, and the Mongo-backed repositories."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI
from services.auth.tests.contract import (
    OAuthStatesContract,
    RefreshTokensContract,
    SigningKeysContract,
    ThrottleContract,
    UsersContract,
)
from services.auth.tests.support import unique_email, unique_ip

from llmts_auth.adapters.mongo import (
    INDEXES,
    MongoLoginThrottle,
    MongoOAuthStates,
    MongoRefreshTokens,
    MongoSigningKeys,
    MongoUsers,
)
from llmts_auth.domain.throttle import ThrottlePolicy
from llmts_auth.settings import AuthSettings
from llmts_common.contracts import topics
from llmts_common.kafka_security import kafka_client_options
from llmts_common.mongo import ensure_indexes

pytestmark = pytest.mark.connected

PASSWORD = "a perfectly fine passphrase"


async def register(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, **kw: Any
) -> httpx.Response:
    return await client.post("/auth/register", json={"email": email, "password": password, **kw})


async def login(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, ip: str | None = None
) -> httpx.Response:
    headers = {"x-forwarded-for": ip} if ip else {}
    return await client.post("/auth/login", json={"email": email, "password": password}, headers=headers)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_register_login_me_refresh_logout(client: httpx.AsyncClient) -> None:
    email = unique_email("flow")
    resp = await register(client, email, name="Ada")
    assert resp.status_code == 201, resp.text
    user = resp.json()
    assert set(user) == {"id", "email", "name", "created_at"}
    assert user["email"] == email.lower()

    resp = await login(client, email.upper())  # case-insensitive
    assert resp.status_code == 200, resp.text
    assert resp.headers["cache-control"] == "no-store"
    pair = resp.json()
    assert pair["token_type"] == "bearer"
    assert pair["expires_in"] == 900

    me = await client.get("/auth/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200
    assert me.json() == user

    resp = await client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert resp.status_code == 200, resp.text
    pair2 = resp.json()
    assert pair2["refresh_token"] != pair["refresh_token"]
    assert (await client.get("/auth/me", headers=bearer(pair2["access_token"]))).status_code == 200

    resp = await client.post(
        "/auth/logout", json={"refresh_token": pair2["refresh_token"]}, headers=bearer(pair2["access_token"])
    )
    assert resp.status_code == 204
    resp = await client.post("/auth/refresh", json={"refresh_token": pair2["refresh_token"]})
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "invalid_refresh_token"


async def test_register_errors(client: httpx.AsyncClient) -> None:
    email = unique_email("dup")
    assert (await register(client, email)).status_code == 201
    resp = await register(client, "  " + email.upper() + " ")
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "email_taken"

    resp = await register(client, unique_email(), password="short")
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "weak_password"
    assert resp.json()["error"]["details"]["reason"] == "too_short"
    resp = await register(client, unique_email(), password="password123")
    assert resp.json()["error"]["details"]["reason"] == "common_password"
    other = unique_email()
    resp = await register(client, other, password=other)
    assert resp.json()["error"]["details"]["reason"] == "matches_email"
    resp = await register(client, "not-an-email")
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "invalid_email"
    resp = await client.post("/auth/register", json={"email": unique_email()})
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "validation_error"


class CountingHasher:
    """Delegates to the service's real (argon2) hasher and records which verify each login paid for."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[str] = []

    async def hash(self, password: str) -> str:
        return str(await self.real.hash(password))

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        self.calls.append("verify")
        ok, new_hash = await self.real.verify(password, password_hash)
        return bool(ok), new_hash

    async def dummy_verify(self, password: str) -> None:
        self.calls.append("dummy_verify")
        await self.real.dummy_verify(password)


async def test_wrong_password_and_unknown_email_are_indistinguishable(
    client: httpx.AsyncClient, auth_app: FastAPI
) -> None:
    email = unique_email("who")
    await register(client, email)
    ctx = auth_app.state.auth
    counting = CountingHasher(ctx.hasher)
    ctx.hasher = counting
    bodies = {}
    try:
        for kind, address in (("wrong", email), ("unknown", unique_email("ghost"))):
            counting.calls.clear()
            start = time.perf_counter()
            resp = await login(client, address, password="not the right one", ip=unique_ip())
            print(f"login, {kind} email/password: {(time.perf_counter() - start) * 1000:.0f} ms")
            assert resp.status_code == 401
            assert resp.headers["www-authenticate"].startswith("Bearer")
            bodies[kind] = resp.json()
            # comparable time by construction: either way exactly one argon2 verify is paid for
            assert counting.calls == (["verify"] if kind == "wrong" else ["dummy_verify"])
    finally:
        ctx.hasher = counting.real
    # the same body but for the correlation id, which names each request
    for body in bodies.values():
        assert body["error"].pop("correlation_id")
    assert bodies["wrong"] == bodies["unknown"]
    assert bodies["wrong"]["error"]["message"] == "invalid email or password"


async def test_refresh_reuse_revokes_the_family(client: httpx.AsyncClient) -> None:
    email = unique_email("reuse")
    await register(client, email)
    first = (await login(client, email)).json()
    second = (await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()
    third = (await client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})).json()
    replay = await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "refresh_token_reused"
    assert "www-authenticate" in replay.headers
    latest = await client.post("/auth/refresh", json={"refresh_token": third["refresh_token"]})
    assert latest.status_code == 401  # the thief's and the owner's newest token die together
    other = (await login(client, email)).json()  # a new login starts a new family
    assert (
        await client.post("/auth/refresh", json={"refresh_token": other["refresh_token"]})
    ).status_code == 200


async def test_concurrent_refresh_of_one_token_spends_it_once(client: httpx.AsyncClient) -> None:
    email = unique_email("race")
    await register(client, email)
    pair = (await login(client, email)).json()
    results = await asyncio.gather(
        *(client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}) for _ in range(4))
    )
    assert sorted(r.status_code for r in results).count(200) <= 1


async def test_failed_logins_from_one_address_do_not_lock_out_the_owner(
    client: httpx.AsyncClient, settings: AuthSettings
) -> None:
    """Finding 3: wrong passwords from address A slow A down, never the owner logging in from address B."""
    email = unique_email("brute")
    await register(client, email)
    attacker = unique_ip()
    for _ in range(settings.login_max_failures_per_account_ip):
        assert (await login(client, email, password="guess guess guess", ip=attacker)).status_code == 401
    resp = await login(client, email, ip=attacker)  # right password, but from the attacker's address
    assert resp.status_code == 429
    assert resp.json()["error"]["code"] == "too_many_attempts"
    retry_after = int(resp.headers["retry-after"])
    assert 1 <= retry_after <= settings.login_failure_window_seconds
    owner = await login(client, email, ip=unique_ip())
    assert owner.status_code == 200, owner.text


async def test_rotating_forwarded_for_from_an_untrusted_peer_does_not_bypass_the_ip_bucket(
    auth_app: FastAPI, settings: AuthSettings
) -> None:
    """Finding 3: a client that is not a trusted proxy cannot pick its address with X-Forwarded-For."""
    transport = httpx.ASGITransport(app=auth_app, client=(unique_ip(), 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://auth.test") as direct:
        for _ in range(settings.login_max_failures_per_ip):
            resp = await login(direct, unique_email("spray"), ip=unique_ip())
            assert resp.status_code == 401
        resp = await login(direct, unique_email("spray"), ip=unique_ip())
    assert resp.status_code == 429


async def test_failed_logins_are_rate_limited_per_ip(
    client: httpx.AsyncClient, settings: AuthSettings
) -> None:
    ip = unique_ip()
    for _ in range(settings.login_max_failures_per_ip):
        assert (await login(client, unique_email("spray"), ip=ip)).status_code == 401
    resp = await login(client, unique_email("spray"), ip=ip)
    assert resp.status_code == 429
    assert int(resp.headers["retry-after"]) >= 1
    # a client-supplied X-Forwarded-For cannot escape it: the proxy-appended (last) entry counts
    resp = await login(client, unique_email("spray"), ip=f"{unique_ip()}, {ip}")
    assert resp.status_code == 429
    assert (await login(client, unique_email("spray"), ip=unique_ip())).status_code == 401


async def test_protected_endpoints_need_a_bearer_token(client: httpx.AsyncClient) -> None:
    for method, path, body in (("GET", "/auth/me", None), ("POST", "/auth/logout", {"refresh_token": "x"})):
        resp = await client.request(method, path, json=body)
        assert resp.status_code == 401
        assert resp.headers["www-authenticate"].startswith("Bearer")
        assert resp.json()["error"]["code"] == "unauthorized"
    resp = await client.get("/auth/me", headers={"Authorization": "Basic abc"})
    assert resp.status_code == 401


async def test_user_registered_arrives_on_auth_events(
    client: httpx.AsyncClient, settings: AuthSettings
) -> None:
    consumer = AIOKafkaConsumer(
        topics.AUTH_EVENTS,
        **kafka_client_options(settings),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        email = unique_email("event")
        user = (await register(client, email, name="Evented")).json()
        deadline = time.monotonic() + 30
        found: dict[str, Any] | None = None
        while found is None and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    envelope = json.loads(record.value)
                    if envelope.get("subject") == user["id"]:
                        found = {"envelope": envelope, "key": record.key}
        assert found is not None, "UserRegistered not seen on auth.events"
        envelope = found["envelope"]
        assert found["key"] == user["id"].encode()
        assert envelope["type"] == "llmts.auth.user_registered"
        assert envelope["source"] == "auth"
        assert envelope["data"]["email"] == email.lower()
        assert envelope["data"]["method"] == "password"
        assert "password" not in json.dumps(envelope["data"]).replace('"method": "password"', "")
    finally:
        await consumer.stop()
    # the outbox entry is gone once published
    users = MongoUsers(_db(client), None)
    doc = await users.col.find_one({"_id": user["id"]})
    assert doc is not None
    for _ in range(50):
        if not doc.get("_outbox"):
            break
        await asyncio.sleep(0.1)
        doc = await users.col.find_one({"_id": user["id"]})
        assert doc is not None
    assert not doc.get("_outbox")


def _db(client: httpx.AsyncClient) -> Any:
    app: FastAPI = client._transport.app  # type: ignore[attr-defined]
    return app.state.runtime.db


async def test_health_and_jwks(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).status_code == 200
    ready = await client.get("/ready")
    assert ready.status_code == 200, ready.text
    jwks = (await client.get("/.well-known/jwks.json")).json()
    assert jwks["keys"]
    for key in jwks["keys"]:
        assert key["kty"] == "OKP"
        assert "d" not in key


# --- the repository contract against the real Mongo-wire server ------------------------------------------------


@pytest.fixture(scope="module")
async def mongo_db(auth_app: FastAPI) -> AsyncIterator[Any]:
    """A database of its own: contract tests write odd documents (e.g. a dummy signing key) the app must not see."""
    runtime = auth_app.state.runtime
    db = runtime.mongo[f"{runtime.db.name}_contract"]
    await ensure_indexes(db, INDEXES)
    yield db
    await runtime.mongo.drop_database(db.name)


class TestMongoUsers(UsersContract):
    @pytest.fixture
    def users(self, mongo_db: Any, auth_app: FastAPI) -> MongoUsers:
        return MongoUsers(mongo_db, auth_app.state.auth.users._outbox)


class TestMongoRefreshTokens(RefreshTokensContract):
    @pytest.fixture
    def refresh_tokens(self, mongo_db: Any) -> MongoRefreshTokens:
        return MongoRefreshTokens(mongo_db)


class TestMongoOAuthStates(OAuthStatesContract):
    @pytest.fixture
    def states(self, mongo_db: Any) -> MongoOAuthStates:
        return MongoOAuthStates(mongo_db)


class TestMongoThrottle(ThrottleContract):
    @pytest.fixture
    def throttle(self, mongo_db: Any) -> MongoLoginThrottle:
        return MongoLoginThrottle(mongo_db, ThrottlePolicy(window=timedelta(minutes=15)))


class TestMongoSigningKeys(SigningKeysContract):
    @pytest.fixture
    def keys(self, mongo_db: Any) -> MongoSigningKeys:
        return MongoSigningKeys(mongo_db)
