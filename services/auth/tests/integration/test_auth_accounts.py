"""Accounts over HTTP on the real auth app (Mongo-wire + Kafka): OAuth state bound to the browser, registration
throttle, password change, self-erasure with ``UserDeleted`` on ``auth.events``, the admin API and the role CLI."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI
from services.auth.tests.integration.test_auth_oauth import authorize, callback, gh_id
from services.auth.tests.support import BASE, drop_database, make_settings, unique_email, unique_ip
from tests.fakes.oauth import FakeOAuth, FakeUser

from llmts_auth.bootstrap import bootstrap
from llmts_auth.entrypoints import cli
from llmts_auth.settings import AuthSettings
from llmts_common.contracts import topics
from llmts_common.kafka_security import kafka_client_options

pytestmark = pytest.mark.connected

PASSWORD = "a perfectly fine passphrase"
NEW_PASSWORD = "another perfectly fine one"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def signed_up(client: httpx.AsyncClient, prefix: str = "acct") -> dict[str, Any]:
    email = unique_email(prefix)
    user = await client.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert user.status_code == 201, user.text
    pair = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert pair.status_code == 200, pair.text
    return {"email": email, "id": user.json()["id"], **pair.json()}


async def test_oauth_state_is_bound_to_the_browser_by_a_cookie(
    client: httpx.AsyncClient, auth_app: FastAPI, oauth: FakeOAuth
) -> None:
    """Finding 13, login CSRF: the attacker's own state + code replayed in another browser is refused."""
    oauth.github_user = FakeUser(subject=gh_id(), email=unique_email("csrf"))
    answer = await authorize(client, "github")
    cookie = client.cookies.get("llmts_oauth_state", path="/auth/oauth")
    assert cookie
    victim = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=auth_app, client=("127.0.0.1", 40001)), base_url=BASE
    )
    async with victim:
        refused = await callback(victim, "github", answer.headers["location"])
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_state"
    start = await client.get("/auth/oauth/github")
    set_cookie = start.headers["set-cookie"].lower()
    assert "httponly" in set_cookie
    assert "samesite=lax" in set_cookie
    assert "path=/auth/oauth" in set_cookie
    assert "max-age=" in set_cookie


async def test_password_change_revokes_other_sessions(client: httpx.AsyncClient) -> None:
    me = await signed_up(client)
    other = (await client.post("/auth/login", json={"email": me["email"], "password": PASSWORD})).json()
    wrong = await client.post(
        "/auth/password",
        json={"current_password": "not my password", "new_password": NEW_PASSWORD},
        headers=bearer(me["access_token"]),
    )
    assert wrong.status_code == 403
    assert wrong.json()["error"]["code"] == "reauthentication_required"
    weak = await client.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=bearer(me["access_token"]),
    )
    assert weak.status_code == 422
    changed = await client.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(me["access_token"]),
    )
    assert changed.status_code == 200, changed.text
    assert (
        await client.post("/auth/refresh", json={"refresh_token": other["refresh_token"]})
    ).status_code == 401
    fresh = await client.post("/auth/refresh", json={"refresh_token": changed.json()["refresh_token"]})
    assert fresh.status_code == 200
    old = await client.post("/auth/login", json={"email": me["email"], "password": PASSWORD})
    assert old.status_code == 401
    assert (
        await client.post("/auth/login", json={"email": me["email"], "password": NEW_PASSWORD})
    ).status_code == 200


async def test_delete_me_erases_the_account_and_publishes_user_deleted(
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
        me = await signed_up(client, "erase")
        # a token older than 5 minutes would need the password; a wrong password is refused
        wrong = await client.request(
            "DELETE", "/auth/me", json={"password": "not my password"}, headers=bearer(me["access_token"])
        )
        assert wrong.status_code == 403
        gone = await client.request(
            "DELETE", "/auth/me", json={"password": PASSWORD}, headers=bearer(me["access_token"])
        )
        assert gone.status_code == 204, gone.text
        seen = await _wait_for(consumer, me["id"], "llmts.auth.user_deleted")
        assert seen["data"]["by"] == "self"
        assert me["email"].lower() not in json.dumps(seen["data"])
    finally:
        await consumer.stop()
    assert (await client.get("/auth/me", headers=bearer(me["access_token"]))).status_code == 401
    assert (
        await client.post("/auth/refresh", json={"refresh_token": me["refresh_token"]})
    ).status_code == 401
    login = await client.post("/auth/login", json={"email": me["email"], "password": PASSWORD})
    assert login.status_code == 401
    again = await client.post("/auth/register", json={"email": me["email"], "password": PASSWORD})
    assert again.status_code == 201  # the address is free again


async def _wait_for(consumer: AIOKafkaConsumer, user_id: str, kind: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for records in (await consumer.getmany(timeout_ms=500)).values():
            for record in records:
                envelope = json.loads(record.value)
                if envelope.get("subject") == user_id and envelope["type"] == kind:
                    return dict(envelope)
    raise AssertionError(f"{kind} for {user_id} not seen on auth.events")


async def test_admin_api_and_the_role_cli(client: httpx.AsyncClient, settings: AuthSettings) -> None:
    admin = await signed_up(client, "admin")
    user = await signed_up(client, "managed")
    refused = await client.get("/auth/admin/users", headers=bearer(admin["access_token"]))
    assert refused.status_code == 403
    assert await asyncio.to_thread(cli.main, ["grant", admin["email"]], settings) == 0
    assert await asyncio.to_thread(cli.main, ["grant", unique_email("nobody")], settings) == 1
    assert await cli.set_role(settings, admin["email"], "admin") == admin["id"]  # idempotent
    with pytest.raises(LookupError):
        await cli.set_role(settings, unique_email("nobody"), "admin")
    # the role reaches the token at the next refresh
    admin.update((await client.post("/auth/refresh", json={"refresh_token": admin["refresh_token"]})).json())
    hdrs = bearer(admin["access_token"])
    page = await client.get("/auth/admin/users", params={"limit": 2}, headers=hdrs)
    assert page.status_code == 200, page.text
    assert len(page.json()["items"]) <= 2
    assert page.json()["total"] >= 2
    assert (await client.get("/auth/admin/users", params={"limit": 1000}, headers=hdrs)).status_code == 422
    one = await client.get(f"/auth/admin/users/{user['id']}", headers=hdrs)
    assert one.json()["role"] == "user"
    assert one.json()["has_password"] is True
    assert (await client.get("/auth/admin/users/nobody", headers=hdrs)).status_code == 404
    disabled = await client.post(f"/auth/admin/users/{user['id']}/disable", headers=hdrs)
    assert disabled.json()["disabled"] is True
    login = await client.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert (login.status_code, login.json()["error"]["code"]) == (403, "account_disabled")
    assert (
        await client.post("/auth/refresh", json={"refresh_token": user["refresh_token"]})
    ).status_code == 401
    await client.post(f"/auth/admin/users/{user['id']}/enable", headers=hdrs)
    assert (
        await client.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
    ).status_code == 200
    promoted = await client.put(f"/auth/admin/users/{user['id']}/role", json={"role": "admin"}, headers=hdrs)
    assert promoted.json()["role"] == "admin"
    self_demote = await client.put(
        f"/auth/admin/users/{admin['id']}/role", json={"role": "user"}, headers=hdrs
    )
    assert self_demote.status_code == 409
    assert (await client.delete(f"/auth/admin/users/{user['id']}", headers=hdrs)).status_code == 204
    assert (await client.get(f"/auth/admin/users/{user['id']}", headers=hdrs)).status_code == 404


@pytest.fixture
async def strict_app() -> AsyncIterator[FastAPI]:
    settings = make_settings(register_max_per_ip=3, kafka_client_id=f"auth-strict-{uuid.uuid4().hex[:8]}")
    app, _ = bootstrap(settings)
    async with app.router.lifespan_context(app):
        yield app
    await drop_database(settings)


async def test_registration_is_throttled_per_client_address(strict_app: FastAPI) -> None:
    """Finding 4: ``/auth/register`` had no throttle."""
    transport = httpx.ASGITransport(app=strict_app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        ip = unique_ip()
        statuses = []
        for _ in range(4):
            resp = await c.post(
                "/auth/register",
                json={"email": unique_email("flood"), "password": PASSWORD},
                headers={"x-forwarded-for": ip},
            )
            statuses.append(resp.status_code)
        assert statuses == [201, 201, 201, 429]
        assert int(resp.headers["retry-after"]) >= 1
        other = await c.post(
            "/auth/register",
            json={"email": unique_email("flood"), "password": PASSWORD},
            headers={"x-forwarded-for": unique_ip()},
        )
        assert other.status_code == 201


async def test_concurrent_attempts_from_one_address_are_refused_at_once(client: httpx.AsyncClient) -> None:
    """Finding 4: a burst from one address cannot fill the hashing queue (nor slip past the failure counters)."""
    ip = unique_ip()
    answers = await asyncio.gather(
        *(
            client.post(
                "/auth/login",
                json={"email": unique_email("burst"), "password": "wrong password"},
                headers={"x-forwarded-for": ip},
            )
            for _ in range(8)
        )
    )
    refused = [r for r in answers if r.status_code == 429]
    assert refused, [r.status_code for r in answers]
    assert {r.json()["error"]["code"] for r in refused} == {"too_many_concurrent_attempts"}
    assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
    assert {r.status_code for r in answers} <= {401, 429}
