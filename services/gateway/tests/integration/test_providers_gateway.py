"""``/providers*`` through the gateway: the catalog served by uvicorn in-process against the fake providers,
the gateway with an injected JWKS verifier, tokens signed here."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from joserfc.jwk import OKPKey
from tests.fakes import ollama as fake_ollama_app
from tests.fakes import openrouter as fake_openrouter_app
from tests.fakes.fixtures import (  # noqa: F401  (fixtures used by this module)
    OPENROUTER_TEST_KEY,
    FakeHandle,
    fake_ollama_server,
    fake_openrouter_server,
)
from tests.support import net, tokens
from tests.support.internal import INTERNAL_TOKEN
from tests.support.serve import serve

from llmts_catalog.bootstrap import bootstrap as bootstrap_catalog
from llmts_catalog.settings import CatalogSettings
from llmts_common.auth import JwksVerifier
from llmts_common.mongo import create_client
from llmts_gateway.bootstrap import bootstrap as bootstrap_gateway
from llmts_gateway.settings import GatewaySettings
from llmts_providers.models import ModelRecord

MONGO_URL = os.environ.get("MONGO_URL", "mongodb://127.0.0.1:27017")
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


@pytest.fixture(scope="module")
def signing_key() -> OKPKey:
    return tokens.signing_key()


def token_for(key: OKPKey, **claims: Any) -> str:
    return tokens.sign(key, tokens.access_claims("user-1", ttl=300, **claims))


@pytest.fixture(scope="module")
async def catalog_url(
    fake_openrouter_server: FakeHandle,  # noqa: F811
    fake_ollama_server: FakeHandle,  # noqa: F811
) -> AsyncIterator[str]:
    """The catalog service on a free port (uvicorn, lifespan on: Mongo, Kafka, the sync loop)."""
    for fake in (fake_openrouter_server, fake_ollama_server):
        fake.ensure_running()
        fake.reset()
    db = f"llmts_test_catalog_gw_{uuid.uuid4().hex[:10]}"
    settings = CatalogSettings(
        mongo_url=MONGO_URL,
        mongo_db=db,
        kafka_bootstrap_servers=KAFKA,
        openrouter_base_url=fake_openrouter_server.base_url,
        openrouter_api_key=OPENROUTER_TEST_KEY,
        ollama_base_url=fake_ollama_server.base_url,
        catalog_providers=["openrouter", "ollama"],
        catalog_refresh_seconds=3600,
        log_json=False,
        shutdown_grace_seconds=5,
        internal_token=INTERNAL_TOKEN,
    )
    app, _runtime, _catalog = bootstrap_catalog(settings)
    try:
        async with serve(app, within=30) as url:
            deadline = time.monotonic() + 30
            async with httpx.AsyncClient(base_url=url) as client:  # the start-up sync runs in the background
                while True:
                    states = (await client.get("/providers")).json()["items"]
                    if all(s["status"] == "ok" for s in states if s["enabled"]):
                        break
                    assert time.monotonic() < deadline, states
                    await asyncio.sleep(0.1)
            yield url
    finally:
        mongo = create_client(MONGO_URL)
        await mongo.drop_database(db)
        await mongo.close()


def gateway_settings(catalog_url: str, db: str) -> GatewaySettings:
    return GatewaySettings(
        catalog_url=catalog_url,
        mongo_url=MONGO_URL,
        mongo_db=db,
        kafka_bootstrap_servers=KAFKA,
        kafka_group_id=f"llmts-gateway-test-{uuid.uuid4().hex[:10]}",
        log_json=False,
        shutdown_grace_seconds=5,
        internal_token=INTERNAL_TOKEN,
    )


def verifier(key: OKPKey) -> JwksVerifier:
    return tokens.verifier_for(key)


@pytest.fixture(scope="module")
async def gateway(catalog_url: str, signing_key: OKPKey) -> AsyncIterator[httpx.AsyncClient]:
    db = f"llmts_test_gateway_{uuid.uuid4().hex[:10]}"
    app, _ctx, _runtime = bootstrap_gateway(gateway_settings(catalog_url, db), verifier=verifier(signing_key))
    try:
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://gateway") as client,
        ):
            yield client
    finally:
        mongo = create_client(MONGO_URL)
        await mongo.drop_database(db)
        await mongo.close()


@pytest.fixture(scope="module")
def auth(signing_key: OKPKey) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(signing_key)}"}


def expected_free_structured() -> set[str]:
    openrouter = [
        ModelRecord.from_openrouter(m)
        for m in fake_openrouter_app.load_catalog()
        if "text" in m["architecture"]["output_modalities"]
    ]
    ollama = [
        ModelRecord.from_ollama(t, fake_ollama_app.show_payload(t)) for t in fake_ollama_app.load_tags()
    ]
    return {r.key for r in openrouter + ollama if r.free and r.structured_output}


async def test_free_structured_models_with_prices_per_million(
    gateway: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    resp = await gateway.get(
        "/providers/models", params={"free": "true", "structured_output": "true", "limit": 500}, headers=auth
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    expected = expected_free_structured()
    assert body["total"] == len(expected) > 0
    assert {f"{i['provider']}:{i['id']}" for i in body["items"]} == expected
    for item in body["items"]:
        assert item["free"]
        assert item["structured_output"]
        assert Decimal(item["pricing"]["prompt"]) == 0 or item["id"].endswith(":free")
    assert any(i["id"] == "meta-llama/llama-3.3-70b-instruct:free" for i in body["items"])

    paid = await gateway.get(
        "/providers/models", params={"provider": "openrouter", "free": "false", "limit": 1}, headers=auth
    )
    item = paid.json()["items"][0]
    per_token = item["raw"]["pricing"]["completion"]
    assert Decimal(item["pricing"]["completion"]) == Decimal(per_token) * 1_000_000


async def test_every_route_needs_a_token(gateway: httpx.AsyncClient, signing_key: OKPKey) -> None:
    for method, path, body in (
        ("GET", "/providers", None),
        ("GET", "/providers/models?free=true&structured_output=true", None),
        ("GET", "/providers/models/openai/gpt-4o-mini", None),
        ("POST", "/providers/test", {"provider": "ollama"}),
    ):
        resp = await gateway.request(method, path, json=body)
        assert resp.status_code == 401, path
        assert resp.json()["error"]["code"] == "unauthorized"
    expired = token_for(signing_key, exp=int(time.time()) - 3600)
    resp = await gateway.get("/providers", headers={"Authorization": f"Bearer {expired}"})
    assert resp.status_code == 401


@pytest.mark.parametrize(
    "model_id", ["openai/gpt-4o-mini", "meta-llama/llama-3.3-70b-instruct:free", "llama3.2:latest"]
)
async def test_slash_and_colon_ids_route_through_the_gateway(
    gateway: httpx.AsyncClient, auth: dict[str, str], model_id: str
) -> None:
    resp = await gateway.get(f"/providers/models/{model_id}", headers=auth)
    assert resp.status_code == 200, resp.text
    assert resp.json()["id"] == model_id
    missing = await gateway.get("/providers/models/acme/nothing:free", headers=auth)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_not_found"


async def test_invalid_params_are_422_at_the_gateway(
    gateway: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for params in ({"limit": "0"}, {"sort": "hype"}, {"free": "perhaps"}, {"min_context": "-1"}):
        resp = await gateway.get("/providers/models", params=params, headers=auth)
        assert resp.status_code == 422, params
        assert resp.json()["error"]["code"] == "validation_error"
    bad = await gateway.post("/providers/test", json={"provider": "azure"}, headers=auth)
    assert bad.status_code == 422


async def test_providers_and_provider_test_through_the_gateway(
    gateway: httpx.AsyncClient, auth: dict[str, str], signing_key: OKPKey
) -> None:
    states = (await gateway.get("/providers", headers=auth)).json()["items"]
    assert {s["name"]: s["status"] for s in states} == {
        "openrouter": "ok",
        "ollama": "ok",
        "openai-compatible": "disabled",  # not configured in this test
    }
    synced = [s for s in states if s["enabled"]]
    assert all(s["model_count"] > 0 and s["configured"] for s in synced)
    admin = {"Authorization": f"Bearer {token_for(signing_key, role='admin')}"}
    result = (await gateway.post("/providers/test", json={"provider": "openrouter"}, headers=admin)).json()
    assert result["reachable"]
    assert result["key_valid"] is True
    assert result["credits"] is not None


async def test_a_user_gets_a_reduced_provider_test(gateway: httpx.AsyncClient, auth: dict[str, str]) -> None:
    resp = await gateway.post("/providers/test", json={"provider": "openrouter"}, headers=auth)
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert set(result) == {"provider", "configured", "reachable", "latency_ms"}
    assert result["reachable"] is True
    assert "credits" not in resp.text


async def test_pagination_and_sort_pass_through(gateway: httpx.AsyncClient, auth: dict[str, str]) -> None:
    page = (
        await gateway.get(
            "/providers/models",
            params={"sort": "context", "order": "desc", "limit": 5, "offset": 5, "verbose": "false"},
            headers=auth,
        )
    ).json()
    assert page["limit"] == 5
    assert page["offset"] == 5
    contexts = [i["context_length"] for i in page["items"]]
    assert contexts == sorted(contexts, reverse=True)
    assert "raw" not in page["items"][0]


async def test_sync_is_admin_only(
    gateway: httpx.AsyncClient, auth: dict[str, str], signing_key: OKPKey
) -> None:
    resp = await gateway.post("/providers/sync", json={}, headers=auth)
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "forbidden"
    admin = {"Authorization": f"Bearer {token_for(signing_key, role='admin')}"}
    resp = await gateway.post("/providers/sync", json={"provider": "ollama"}, headers=admin)
    assert resp.status_code == 200, resp.text
    assert [i["provider"] for i in resp.json()["items"]] == ["ollama"]


@pytest.mark.parametrize(
    "path",
    [
        "/providers/models/%2E%2E/%2E%2E/metrics",
        "/providers/models/%2e%2e/%2e%2e/openapi.json",
        "/providers/models/../docs",
        "/providers/models/openai%2Fgpt-4o-mini",
        "/providers/models/openai//gpt-4o-mini",
        "/providers/models/./ready",
        "/providers/models/a/%252E%252E/ready",
    ],
)
async def test_model_ids_cannot_reach_other_catalog_routes(
    gateway: httpx.AsyncClient, auth: dict[str, str], path: str
) -> None:
    resp = await gateway.get(path, headers=auth)
    assert resp.status_code in (400, 404, 422), resp.text
    assert "error" in resp.json()
    assert "llmts_http_requests_total" not in resp.text


async def test_catalog_down_is_a_503_error_body(signing_key: OKPKey, auth: dict[str, str]) -> None:
    dead = net.unused_port_url()
    app, _ctx, _runtime = bootstrap_gateway(gateway_settings(dead, "unused"), verifier=verifier(signing_key))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:  # no lifespan
        resp = await client.get("/providers/models", headers=auth)
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "service_unavailable"


async def test_openapi_lists_explicit_provider_routes(gateway: httpx.AsyncClient) -> None:
    spec = (await gateway.get("/openapi.json")).json()
    paths = spec["paths"]
    assert {"/providers", "/providers/models", "/providers/models/{model_id}", "/providers/test"} <= set(
        paths
    )
    params = {p["name"] for p in paths["/providers/models"]["get"]["parameters"]}
    assert {"provider", "free", "online", "structured_output", "min_context", "modality", "q"} <= params
    assert {"sort", "order", "limit", "offset"} <= params
    assert paths["/providers/models"]["get"]["tags"] == ["providers"]
