"""The README's curl walk-through against the whole running stack: register, log in, call /auth/me, refresh
(with reuse detection), log out — all through the gateway — and UserRegistered arriving on auth.events."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from llmts_common.kafka_security import kafka_client_options
from tests.e2e.conftest import register_and_login
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e


async def test_register_login_me_refresh_logout(gateway: httpx.AsyncClient) -> None:
    user = await register_and_login(gateway, "e2e-auth")
    me = await gateway.get("/auth/me", headers=user.headers)
    assert me.status_code == 200, me.text
    assert me.json()["id"] == user.user_id
    assert me.json()["email"] == user.email

    refreshed = await gateway.post("/auth/refresh", json={"refresh_token": user.refresh_token})
    assert refreshed.status_code == 200, refreshed.text
    pair = refreshed.json()
    assert (
        await gateway.get("/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    ).status_code == 200

    replay = await gateway.post("/auth/refresh", json={"refresh_token": user.refresh_token})
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "refresh_token_reused"
    assert (
        await gateway.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    ).status_code == 401

    again = (await gateway.post("/auth/login", json={"email": user.email, "password": user.password})).json()
    out = await gateway.post(
        "/auth/logout",
        json={"refresh_token": again["refresh_token"]},
        headers={"Authorization": f"Bearer {again['access_token']}"},
    )
    assert out.status_code == 204
    assert (
        await gateway.post("/auth/refresh", json={"refresh_token": again["refresh_token"]})
    ).status_code == 401

    anonymous = await gateway.get("/auth/me")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")


async def test_user_registered_is_published(gateway: httpx.AsyncClient, stack: Stack) -> None:
    consumer = AIOKafkaConsumer(
        stack.topic("auth.events"),
        **kafka_client_options(),
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        email = f"e2e-event-{uuid.uuid4().hex[:8]}@example.com"
        resp = await gateway.post(
            "/auth/register", json={"email": email, "password": "correct horse battery 7"}
        )
        assert resp.status_code == 201, resp.text
        user_id = resp.json()["id"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    envelope = json.loads(record.value)
                    if envelope.get("subject") == user_id:
                        assert envelope["type"] == "llmts.auth.user_registered"
                        assert envelope["data"]["email"] == email
                        return
        pytest.fail("UserRegistered did not arrive on auth.events")
    finally:
        await consumer.stop()
