"""Forged tokens are refused by the shared JwksVerifier (what the gateway and every service run) and by
``/auth/me``; key rotation keeps both keys in the JWKS; no secret ever reaches a response or a log line."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jws, jwt
from joserfc.jwk import OKPKey, RSAKey
from services.auth.tests.support import BASE, unique_email

from llmts_auth import handlers
from llmts_auth.adapters.jose import generate_ed25519_key
from llmts_auth.bootstrap import token_policy
from llmts_auth.domain.tokens import active_key
from llmts_auth.settings import AuthSettings
from llmts_common.auth import JwksVerifier
from llmts_common.errors import Unauthorized

pytestmark = pytest.mark.connected

PASSWORD = "a perfectly fine passphrase"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj: Any) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


@pytest.fixture
async def verifier(auth_app: FastAPI, settings: AuthSettings) -> AsyncIterator[JwksVerifier]:
    """The verifier the gateway uses, fetching the JWKS over HTTP from the auth app."""
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=auth_app), base_url=BASE)
    yield JwksVerifier(
        f"{BASE}/.well-known/jwks.json",
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        http=http,
        min_refresh_seconds=0,
    )
    await http.aclose()


async def session(client: httpx.AsyncClient) -> dict[str, Any]:
    email = unique_email("sec")
    user = (await client.post("/auth/register", json={"email": email, "password": PASSWORD})).json()
    pair = (await client.post("/auth/login", json={"email": email, "password": PASSWORD})).json()
    return {"user": user, "email": email, **pair}


async def signing_key(auth_app: FastAPI) -> tuple[str, OKPKey]:
    key = active_key(await auth_app.state.signing_keys.all(), now=auth_app.state.auth.clock())
    assert key is not None
    return key.kid, OKPKey.import_key(key.private_jwk)


def claims_for(user_id: str, settings: AuthSettings, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": user_id,
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "typ": "access",
    }
    claims.update(over)
    return claims


async def assert_refused(token: str, verifier: JwksVerifier, client: httpx.AsyncClient) -> None:
    with pytest.raises(Unauthorized):
        await verifier.verify(token)
    resp = await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401, resp.text
    assert resp.headers["www-authenticate"].startswith("Bearer")


async def test_genuine_token_is_accepted(client: httpx.AsyncClient, verifier: JwksVerifier) -> None:
    s = await session(client)
    principal = await verifier.verify(s["access_token"])
    assert principal.user_id == s["user"]["id"]


async def test_alg_none(
    client: httpx.AsyncClient, verifier: JwksVerifier, auth_app: FastAPI, settings: AuthSettings
) -> None:
    s = await session(client)
    kid, _ = await signing_key(auth_app)
    for alg in ("none", "None", "NONE"):
        token = f"{b64json({'alg': alg, 'kid': kid, 'typ': 'JWT'})}.{b64json(claims_for(s['user']['id'], settings))}."
        await assert_refused(token, verifier, client)


async def test_hs256_signed_with_the_public_key(
    client: httpx.AsyncClient, verifier: JwksVerifier, auth_app: FastAPI, settings: AuthSettings
) -> None:
    s = await session(client)
    kid, key = await signing_key(auth_app)
    public = key.as_dict(private=False)
    secrets_to_try = [
        json.dumps(public).encode(),
        base64.urlsafe_b64decode(public["x"] + "=="),
        key.as_pem(private=False),
    ]
    for secret in secrets_to_try:
        signing_input = (
            f"{b64json({'alg': 'HS256', 'kid': kid})}.{b64json(claims_for(s['user']['id'], settings))}"
        )
        sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        await assert_refused(f"{signing_input}.{b64(sig)}", verifier, client)


async def test_wrong_key_with_the_real_kid(
    client: httpx.AsyncClient, verifier: JwksVerifier, auth_app: FastAPI, settings: AuthSettings
) -> None:
    s = await session(client)
    kid, _ = await signing_key(auth_app)
    attacker = OKPKey.generate_key("Ed25519", parameters={"kid": kid}, private=True)
    token = jwt.encode(
        {"alg": "Ed25519", "kid": kid},
        claims_for(s["user"]["id"], settings),
        attacker,
        algorithms=["Ed25519"],
    )
    await assert_refused(token, verifier, client)
    rsa = RSAKey.generate_key(2048, parameters={"kid": "attacker"}, private=True)
    token = jwt.encode(
        {"alg": "RS256", "kid": "attacker"}, claims_for(s["user"]["id"], settings), rsa, algorithms=["RS256"]
    )
    await assert_refused(token, verifier, client)


async def test_expired_wrong_audience_wrong_issuer_wrong_type(
    client: httpx.AsyncClient, verifier: JwksVerifier, auth_app: FastAPI, settings: AuthSettings
) -> None:
    s = await session(client)
    kid, key = await signing_key(auth_app)
    now = int(time.time())
    variants = [
        {"exp": now - 120, "iat": now - 1000},
        {"aud": "another-audience"},
        {"iss": "https://evil.example"},
        {"typ": "refresh"},
        {"sub": None},
    ]
    for over in variants:
        claims = claims_for(s["user"]["id"], settings, **over)
        claims = {k: v for k, v in claims.items() if v is not None}
        token = jwt.encode({"alg": "Ed25519", "kid": kid}, claims, key, algorithms=["Ed25519"])
        await assert_refused(token, verifier, client)
    no_exp = {k: v for k, v in claims_for(s["user"]["id"], settings).items() if k != "exp"}
    await assert_refused(
        jwt.encode({"alg": "Ed25519", "kid": kid}, no_exp, key, algorithms=["Ed25519"]), verifier, client
    )


async def test_tampered_payload(client: httpx.AsyncClient, verifier: JwksVerifier) -> None:
    victim = await session(client)
    attacker = await session(client)
    header, payload, sig = attacker["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = victim["user"]["id"]
    await assert_refused(f"{header}.{b64json(claims)}.{sig}", verifier, client)
    await assert_refused(f"{header}.{payload}.{sig[:-4]}AAAA", verifier, client)
    await assert_refused("not.a.jwt", verifier, client)


async def test_token_of_a_deleted_user(
    client: httpx.AsyncClient, auth_app: FastAPI, verifier: JwksVerifier
) -> None:
    s = await session(client)
    ctx = auth_app.state.auth
    assert await handlers.delete_user(s["user"]["id"], users=ctx.users, refresh_tokens=ctx.refresh_tokens)
    resp = await client.get("/auth/me", headers={"Authorization": f"Bearer {s['access_token']}"})
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "user_not_found"
    assert resp.headers["www-authenticate"].startswith("Bearer")
    resp = await client.post("/auth/refresh", json={"refresh_token": s["refresh_token"]})
    assert resp.status_code == 401
    # signature-only verifiers (other services) accept it until it expires (≤ 15 min); documented trade-off
    assert (await verifier.verify(s["access_token"])).user_id == s["user"]["id"]


async def test_key_rotation_without_downtime(
    client: httpx.AsyncClient, auth_app: FastAPI, settings: AuthSettings
) -> None:
    """A new key is published first and signs after a delay longer than the verifiers' refresh interval, so a
    verifier holding the old JWKS refetches on the new kid and never refuses a genuine token."""
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=auth_app), base_url=BASE)
    gateway = JwksVerifier(
        f"{BASE}/.well-known/jwks.json",
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        http=http,
        min_refresh_seconds=1.0,
    )
    try:
        before = await session(client)
        assert (await gateway.verify(before["access_token"])).user_id == before["user"]["id"]  # caches JWKS
        old_kid = jws.extract_compact(before["access_token"].encode()).headers()["kid"]
        new = await handlers.rotate_signing_key(
            keys=auth_app.state.signing_keys,
            generate=generate_ed25519_key,
            clock=auth_app.state.auth.clock,
            policy=token_policy(settings),
            activation_delay=timedelta(seconds=1.5),
        )
        kids = [k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]]
        assert old_kid in kids
        assert new.kid in kids  # two keys in the JWKS
        during = await session(client)
        assert jws.extract_compact(during["access_token"].encode()).headers()["kid"] == old_kid
        await asyncio.sleep(1.6)
        after = await session(client)
        assert jws.extract_compact(after["access_token"].encode()).headers()["kid"] == new.kid
        for s in (before, during, after):
            assert (await gateway.verify(s["access_token"])).user_id == s["user"]["id"]
            me = await client.get("/auth/me", headers={"Authorization": f"Bearer {s['access_token']}"})
            assert me.status_code == 200, me.text
        refreshed = await client.post("/auth/refresh", json={"refresh_token": before["refresh_token"]})
        assert refreshed.status_code == 200
        retired = next(k for k in await auth_app.state.signing_keys.all() if k.kid == old_kid)
        assert retired.publish_until is not None  # leaves the JWKS once its last token has expired
        assert retired.publish_until >= new.activated_at + timedelta(
            seconds=settings.access_token_ttl_seconds
        )
    finally:
        await http.aclose()


async def test_no_secret_in_any_response_or_log_line(client: httpx.AsyncClient, auth_app: FastAPI) -> None:
    root = logging.getLogger()
    handler = next(h for h in root.handlers if isinstance(h, logging.StreamHandler))
    buffer = io.StringIO()
    previous_stream = handler.setStream(buffer)
    previous_level = root.level
    root.setLevel(logging.DEBUG)
    logging.getLogger("llmts").setLevel(logging.DEBUG)
    responses: list[str] = []
    try:
        email = unique_email("logs")
        password = "my secret passphrase 42"

        async def call(method: str, path: str, **kw: Any) -> httpx.Response:
            resp = await client.request(method, path, **kw)
            responses.append(resp.text)
            return resp

        await call("POST", "/auth/register", json={"email": email, "password": password})
        await call("POST", "/auth/register", json={"email": email, "password": password})  # 409
        await call("POST", "/auth/login", json={"email": email, "password": "wrong " + password})
        pair = (await call("POST", "/auth/login", json={"email": email, "password": password})).json()
        auth = {"Authorization": f"Bearer {pair['access_token']}"}
        await call("GET", "/auth/me", headers=auth)
        second = (await call("POST", "/auth/refresh", json={"refresh_token": pair["refresh_token"]})).json()
        await call(
            "POST", "/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        )  # reuse → warning log
        await call("POST", "/auth/logout", json={"refresh_token": second["refresh_token"]}, headers=auth)
        await call("GET", "/auth/me", headers={"Authorization": "Bearer " + pair["access_token"] + "x"})
        # even careless log calls are redacted by the logging pipeline
        logging.getLogger("llmts.auth").warning(
            "debug dump %s", {"password": password, "token": second["refresh_token"]}
        )
        doc = await auth_app.state.runtime.db["users"].find_one({"email": email.lower()})
        stored_hash = doc["password_hash"]
        logging.getLogger("llmts.auth").error("hash was %s", stored_hash)
    finally:
        handler.setStream(previous_stream)  # type: ignore[arg-type]
        root.setLevel(previous_level)
    output = buffer.getvalue()
    assert "user registered" in output  # logs were captured
    assert "refresh token reuse detected" in output
    secrets = {
        "password": password,
        "password hash": stored_hash,
        "argon2 marker": "$argon2",
        "access token": pair["access_token"],
        "access signature": pair["access_token"].rsplit(".", 1)[1],
        "refresh token": pair["refresh_token"],
        "second refresh token": second["refresh_token"],
        "second access token": second["access_token"],
    }
    for what, value in secrets.items():
        assert value not in output, f"{what} leaked into the logs"
    for line in output.splitlines():
        json.loads(line)  # every line is structured JSON
    for body in responses:
        assert password not in body
        assert "$argon2" not in body
        assert "password_hash" not in body
