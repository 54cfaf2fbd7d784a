"""Security suite, the edge and the internal routes (issue 14, findings 5, 6, 7, 8, 9, 12 and 13): through the gateway
of the shared stack and, for the internal routes, directly against the services. Results are asserted, never
durations."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from llmts_common.contracts import GenerationRequested, ModelRef, Prompts, TemplateSnapshot
from llmts_common.mongo import create_client, utcnow
from tests.e2e import api
from tests.e2e.conftest import User, register_and_login
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple 42"


@pytest.fixture(scope="module")
async def user(stack: Stack) -> User:
    async with httpx.AsyncClient(base_url=stack.gateway, timeout=30.0) as client:
        return await register_and_login(client, "edge")


@pytest.fixture(scope="module")
async def admin(stack: Stack) -> User:
    """The stack's first admin: whoever registers with its ADMIN_EMAILS address."""
    async with httpx.AsyncClient(base_url=stack.gateway, timeout=30.0) as client:
        r = await client.post(
            "/auth/register", json={"email": stack.admin_email, "password": PASSWORD, "name": "admin"}
        )
        assert r.status_code == 201, r.text
        user_id = r.json()["id"]
        r = await client.post("/auth/login", json={"email": stack.admin_email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        body = r.json()
        return User(stack.admin_email, PASSWORD, body["access_token"], body["refresh_token"], user_id)


@pytest.fixture(scope="module")
async def job_id(stack: Stack, user: User) -> str:
    async with httpx.AsyncClient(base_url=stack.gateway, timeout=30.0) as client:
        r = await client.post("/templates/examples/quiz/import", headers=user.headers)
        assert r.status_code == 201, r.text
        r = await client.post(
            "/generate", headers=user.headers, json={"template_id": r.json()["template"]["id"], "count": 2}
        )
        assert r.status_code == 202, r.text
        job: str = r.json()["job_id"]
        await api.wait_job(client, job, user.headers, within=60)
        return job


# --- 5: a body on GET / DELETE / HEAD is bounded ----------------------------------------------------------------------


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/templates"), ("DELETE", "/templates/x"), ("GET", "/health")]
)
async def test_a_chunked_body_on_a_bodyless_method_is_413(
    gateway: httpx.AsyncClient, user: User, method: str, path: str
) -> None:
    try:
        r = await gateway.request(method, path, headers=user.headers, content=_chunks(40 * 1024 * 1024))
    except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
        pass  # refused while the client was still sending: the gateway never read it all
    else:
        assert r.status_code == 413, r.text
        assert r.json()["error"]["code"] == "payload_too_large"
    declared = await gateway.request(method, path, headers=user.headers, content=b"x" * 20_000)
    assert declared.status_code == 413
    assert (await gateway.get("/health")).status_code == 200


# --- 6: internal routes, directly against each service ----------------------------------------------------------------


async def test_generator_internal_routes_refuse_without_the_internal_token(
    stack: Stack, user: User, job_id: str
) -> None:
    async with httpx.AsyncClient(base_url=stack.url("generator"), timeout=30.0) as client:
        for path in (f"/internal/generate/{job_id}", f"/internal/generate/{job_id}/items"):
            for headers in ({}, user.headers, {"X-Internal-Token": "guess"}):
                r = await client.get(path, headers=headers)
                assert r.status_code == 401, (path, headers, r.text)
                assert r.json()["error"]["code"] == "invalid_internal_token"
                assert user.user_id not in r.text
            ok = await client.get(path, headers={"X-Internal-Token": stack.internal_token})
            assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    ("path", "body"), [("/providers/test", {"provider": "ollama"}), ("/providers/sync", {})]
)
async def test_catalog_test_and_sync_refuse_without_the_internal_token(
    stack: Stack, user: User, path: str, body: dict[str, Any]
) -> None:
    async with httpx.AsyncClient(base_url=stack.url("catalog"), timeout=60.0) as client:
        for headers in ({}, user.headers, {"X-Internal-Token": "guess"}):
            r = await client.post(path, json=body, headers=headers)
            assert r.status_code == 401, (path, headers, r.text)
            assert "credits" not in r.text
        ok = await client.post(path, json=body, headers={"X-Internal-Token": stack.internal_token})
        assert ok.status_code == 200, ok.text


# --- 7: a command that can never be published fails its job; the relay goes on ---------------------------------------


async def test_an_unpublishable_command_fails_its_job_and_does_not_block_the_others(
    stack: Stack, gateway: httpx.AsyncClient, user: User
) -> None:
    """A command over Kafka's 1 MiB limit, written straight into the gateway's outbox (admission would refuse it
    with 413), is parked by the relay: the job reads failed with the reason, and later jobs still run."""
    job = uuid.uuid4().hex
    command = GenerationRequested(
        job_id=job,
        user_id=user.user_id,
        template=TemplateSnapshot(
            id="t-big",
            version=1,
            name="big",
            owner_id=user.user_id,
            prompts=Prompts(user="x" * 1_200_000),
            schema={"type": "object"},
        ),
        model=ModelRef(provider="openrouter", id="openai/gpt-4o-mini"),
        count=1,
        requested_at=datetime.now(UTC),
    )
    envelope = command.to_envelope(source="gateway", message_id=job)
    mongo = create_client(os.environ.get("MONGO_URL", "mongodb://127.0.0.1:27017"))
    try:
        await mongo[f"llmts_e2e_{stack.run_id}_gateway"]["outbox"].insert_one(
            {
                "_id": envelope.id,
                "topic": GenerationRequested.TOPIC,
                "envelope": envelope.model_dump(mode="json"),
                "published": False,
                "created_at": utcnow(),
            }
        )
    finally:
        await mongo.close()
    view: dict[str, Any] = {}
    for _ in range(150):
        r = await gateway.get(f"/generate/{job}", headers=user.headers)
        assert r.status_code == 200, r.text
        view = r.json()
        if view["status"] != "queued":
            break
        await asyncio.sleep(0.2)
    assert view["status"] == "failed", view
    assert view["error"]["code"] == "command_undeliverable"
    assert "limit" in view["error"]["reason"]
    r = await gateway.post("/templates/examples/quiz/import", headers=user.headers)
    r = await gateway.post(
        "/generate", headers=user.headers, json={"template_id": r.json()["template"]["id"], "count": 1}
    )
    assert r.status_code == 202, r.text
    done = await api.wait_job(gateway, r.json()["job_id"], user.headers, within=60)
    assert done["status"] == "completed"


# --- 8: bounded offsets, case-insensitive content types, correlation ids in error bodies -----------------------------


@pytest.mark.parametrize("offset", ["9223372036854775808", "9223372036854775807", "1000001"])
async def test_huge_offsets_are_422(gateway: httpx.AsyncClient, user: User, offset: str) -> None:
    r = await gateway.post("/templates/examples/quiz/import", headers=user.headers)
    template_id = r.json()["template"]["id"]
    for path in ("/history", f"/templates/{template_id}/versions", "/templates", "/providers/models"):
        resp = await gateway.get(path, params={"offset": offset}, headers=user.headers)
        assert resp.status_code == 422, (path, resp.text)
        assert resp.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize(
    "content_type", ["application/JSON", "Application/Json; charset=UTF-8", "text/plain"]
)
async def test_deep_json_is_refused_whatever_the_content_type_spelling(
    gateway: httpx.AsyncClient, user: User, content_type: str
) -> None:
    body = "[" * 400 + "]" * 400
    r = await gateway.post(
        "/templates", headers={**user.headers, "content-type": content_type}, content=body.encode()
    )
    assert r.status_code in (415, 422), r.text
    assert r.status_code != 500


async def test_every_error_body_carries_the_correlation_id(gateway: httpx.AsyncClient, user: User) -> None:
    answers = [
        await gateway.get("/templates/nope", headers={**user.headers, "x-correlation-id": "edge-404"}),
        await gateway.get(
            "/history", params={"limit": "0"}, headers={**user.headers, "x-correlation-id": "v-1"}
        ),
        await gateway.get("/history", headers={"x-correlation-id": "unauth-1"}),
    ]
    for r, cid in zip(answers, ("edge-404", "v-1", "unauth-1"), strict=True):
        assert r.status_code >= 400
        assert r.json()["error"]["correlation_id"] == cid, r.text
        assert r.headers["x-correlation-id"] == cid


# --- 9: model ids cannot climb to the catalog's own endpoints ---------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/providers/models/%2E%2E/%2E%2E/metrics",
        "/providers/models/%2E%2E/%2E%2E/openapi.json",
        "/providers/models/%2E%2E/%2E%2E/docs",
        "/providers/models/%2E%2E/%2E%2E/ready",
        "/providers/models/openai%2F..%2F..%2Fmetrics",
        "/providers/models/./ready",
    ],
)
async def test_model_ids_never_reach_other_catalog_routes(
    gateway: httpx.AsyncClient, user: User, path: str
) -> None:
    r = await gateway.get(path, headers=user.headers)
    assert 400 <= r.status_code < 500, r.text
    assert "error" in r.json()
    for leaked in ("llmts_http_requests_total", '"openapi":', '"paths"', "SwaggerUIBundle", '"checks"'):
        assert leaked not in r.text


# --- 12: provider test details and catalog sync are the admin's -------------------------------------------------------


async def test_provider_test_details_and_sync_are_admin_only(
    gateway: httpx.AsyncClient, user: User, admin: User
) -> None:
    reduced = await gateway.post("/providers/test", headers=user.headers, json={"provider": "openrouter"})
    assert reduced.status_code == 200, reduced.text
    assert set(reduced.json()) == {"provider", "configured", "reachable", "latency_ms"}
    full = await gateway.post("/providers/test", headers=admin.headers, json={"provider": "openrouter"})
    assert full.status_code == 200, full.text
    assert "key_valid" in full.json()
    r = await gateway.post("/providers/sync", headers=user.headers, json={})
    assert r.status_code == 403
    r = await gateway.post("/providers/sync", headers=admin.headers, json={"provider": "openrouter"})
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["provider"] == "openrouter"


# --- 13: security headers; the docs work offline ----------------------------------------------------------------------


async def test_security_headers_and_self_hosted_docs(gateway: httpx.AsyncClient, user: User) -> None:
    for r in (
        await gateway.get("/health"),
        await gateway.get("/templates", headers=user.headers),
        await gateway.get("/templates/nope", headers=user.headers),  # relayed from the templates service
        await gateway.get("/docs"),
    ):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert "server" not in r.headers
    for page in ("/docs", "/redoc"):
        html = (await gateway.get(page)).text
        assert "cdn.jsdelivr" not in html
        assert "/docs/assets/" in html
    asset = await gateway.get("/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200
    assert "SwaggerUIBundle" in asset.text
