"""The Swagger UI's Authorize flow against the live gateway: /docs loads /openapi.json, whose ``bearerAuth`` scheme
(HTTP bearer) makes Swagger send ``Authorization: Bearer <token>`` on every operation that declares it; that header,
built from the served scheme exactly as Swagger builds it, is accepted, and the same call without it is refused."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import register_and_login

pytestmark = pytest.mark.e2e


async def test_the_authorize_button_sends_a_token_the_gateway_accepts(gateway: httpx.AsyncClient) -> None:
    page = await gateway.get("/docs")
    assert page.status_code == 200
    assert "/openapi.json" in page.text
    doc = (await gateway.get("/openapi.json")).json()
    schemes = doc["components"]["securitySchemes"]
    operation = doc["paths"]["/auth/session"]["get"]
    [requirement] = operation["security"]
    [name] = requirement
    scheme = schemes[name]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert all(p["in"] != "header" for p in operation.get("parameters", []))

    user = await register_and_login(gateway, "swagger")
    # what Swagger UI sends for an http/bearer scheme once a token is entered in the Authorize dialog
    authorized = await gateway.get("/auth/session", headers={"Authorization": f"Bearer {user.access_token}"})
    assert authorized.status_code == 200
    assert authorized.json()["user_id"] == user.user_id
    anonymous = await gateway.get("/auth/session")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
