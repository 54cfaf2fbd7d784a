"""Accounts through the gateway (real auth app + real gateway, Mongo-wire + Kafka): admin-only routes, tokens of
disabled and deleted users refused by the gateway before they expire, a deleted user's commands forgotten, and
login throttling that slows an attacker's address without locking the owner out."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from services.gateway.tests.integration import test_auth_gateway as base
from services.gateway.tests.integration.test_auth_gateway import ADMIN_EMAIL, PASSWORD, bearer, client_for

pytestmark = pytest.mark.connected

# the module-scoped stack of test_auth_gateway (auth app + gateway), shared
auth_url = base.auth_url
gateway_app = base.gateway_app
gateway = base.gateway


async def signed_up(gateway: httpx.AsyncClient, email: str | None = None) -> dict[str, Any]:
    email = email or f"acct-{uuid.uuid4().hex[:12]}@example.com"
    user = await gateway.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert user.status_code in (201, 409), user.text
    pair = await gateway.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert pair.status_code == 200, pair.text
    session = (await gateway.get("/auth/session", headers=bearer(pair.json()["access_token"]))).json()
    return {"email": email, "id": session["user_id"], **pair.json()}


async def until_refused(gateway: httpx.AsyncClient, token: str) -> httpx.Response:
    """/auth/session is answered by the gateway alone: a refusal there is the gateway's revoked-users set."""
    deadline = time.monotonic() + 20.0
    while True:
        resp = await gateway.get("/auth/session", headers=bearer(token))
        if resp.status_code == 401 or time.monotonic() > deadline:
            return resp
        await asyncio.sleep(0.2)


async def test_admin_routes_need_the_admin_role(gateway: httpx.AsyncClient) -> None:
    user = await signed_up(gateway)
    resp = await gateway.get("/admin/users", headers=bearer(user["access_token"]))
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "forbidden"
    assert (await gateway.get("/admin/users")).status_code == 401
    admin = await signed_up(gateway, ADMIN_EMAIL)  # ADMIN_EMAILS: admin at login
    page = await gateway.get("/admin/users", params={"limit": 100}, headers=bearer(admin["access_token"]))
    assert page.status_code == 200, page.text
    assert user["id"] in {u["id"] for u in page.json()["items"]}
    too_many = await gateway.get("/admin/users", params={"limit": 101}, headers=bearer(admin["access_token"]))
    assert too_many.status_code == 422
    bad_id = await gateway.get("/admin/users/..%2F..%2Fx", headers=bearer(admin["access_token"]))
    assert bad_id.status_code in (404, 422)


async def test_a_disabled_users_access_token_is_refused_before_it_expires(gateway: httpx.AsyncClient) -> None:
    admin = await signed_up(gateway, ADMIN_EMAIL)
    user = await signed_up(gateway)
    assert (await gateway.get("/auth/session", headers=bearer(user["access_token"]))).status_code == 200
    hdrs = bearer(admin["access_token"])
    disabled = await gateway.post(f"/admin/users/{user['id']}/disable", headers=hdrs)
    assert disabled.status_code == 200, disabled.text
    refused = await until_refused(gateway, user["access_token"])
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "account_revoked"
    login = await gateway.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert login.status_code == 403
    assert (await gateway.post(f"/admin/users/{user['id']}/enable", headers=hdrs)).status_code == 200
    again = (await gateway.post("/auth/login", json={"email": user["email"], "password": PASSWORD})).json()
    deadline = time.monotonic() + 20
    while (await gateway.get("/auth/session", headers=bearer(again["access_token"]))).status_code != 200:
        assert time.monotonic() < deadline, "the enabled user's new token stays refused"
        await asyncio.sleep(0.2)


async def test_a_deleted_user_is_refused_and_their_commands_forgotten(
    gateway: httpx.AsyncClient, gateway_app: Any
) -> None:
    admin = await signed_up(gateway, ADMIN_EMAIL)
    user = await signed_up(gateway)
    outbox = gateway_app.state.runtime.db["outbox"]
    await outbox.insert_one(
        {"_id": uuid.uuid4().hex, "envelope": {"data": {"user_id": user["id"]}}, "published": True}
    )
    resp = await gateway.delete(f"/admin/users/{user['id']}", headers=bearer(admin["access_token"]))
    assert resp.status_code == 204, resp.text
    refused = await until_refused(gateway, user["access_token"])
    assert refused.json()["error"]["code"] == "account_revoked"
    assert await outbox.count_documents({"envelope.data.user_id": user["id"]}) == 0
    assert (
        await gateway.delete(f"/admin/users/{admin['id']}", headers=bearer(admin["access_token"]))
    ).status_code == 409


async def test_delete_me_and_password_change_through_the_gateway(gateway: httpx.AsyncClient) -> None:
    user = await signed_up(gateway)
    changed = await gateway.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
        headers=bearer(user["access_token"]),
    )
    assert changed.status_code == 200, changed.text
    token = changed.json()["access_token"]
    gone = await gateway.request(
        "DELETE", "/auth/me", json={"password": "a brand new passphrase"}, headers=bearer(token)
    )
    assert gone.status_code == 204, gone.text
    assert (await until_refused(gateway, token)).status_code == 401


async def test_wrong_passwords_from_one_address_do_not_lock_out_the_owner(gateway_app: Any) -> None:
    """Finding 3: the attacker's address is slowed; the owner at another address logs in."""
    async with client_for(gateway_app, ip="192.0.2.10") as owner_side:
        user = await signed_up(owner_side)
    async with client_for(gateway_app, ip="198.51.100.66") as attacker:
        statuses = [
            (
                await attacker.post(
                    "/auth/login", json={"email": user["email"], "password": "not the password"}
                )
            ).status_code
            for _ in range(5)
        ]
        right = await attacker.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert statuses[:3] == [401] * 3
    assert 429 in statuses
    assert right.status_code == 429
    async with client_for(gateway_app, ip="192.0.2.11") as owner:
        resp = await owner.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert resp.status_code == 200, resp.text
