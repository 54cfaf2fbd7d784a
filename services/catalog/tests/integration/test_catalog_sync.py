"""Sync behaviour against the fakes and the real Mongo + Kafka: stale copies, events, provider tests, auth."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from tests.fakes import openrouter as fake_openrouter_app
from tests.fakes.common import FakeState
from tests.fakes.fixtures import OPENROUTER_TEST_KEY, FakeHandle
from tests.fakes.server import start_fake_async
from tests.support.tokens import make_signer

from llmts_catalog import handlers
from llmts_catalog.adapters.mongo import MongoCatalogStore
from llmts_catalog.bootstrap import bootstrap
from llmts_common.contracts.topics import CATALOG_EVENTS
from llmts_common.kafka_security import kafka_client_options
from llmts_common.mongo import create_client
from llmts_providers import OpenRouterProvider

from .conftest import MONGO_URL, RunningCatalog, StartCatalog, catalog_settings


async def wait_until(predicate: Any, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def providers(svc: RunningCatalog) -> dict[str, dict[str, Any]]:
    resp = await svc.client.get("/providers")
    assert resp.status_code == 200
    return {p["name"]: p for p in resp.json()["items"]}


# --- stale catalog ---------------------------------------------------------------------------------------
async def test_a_provider_that_goes_down_keeps_its_last_good_copy_marked_stale(
    synced: RunningCatalog, fake_openrouter: FakeHandle
) -> None:
    before = await providers(synced)
    count = before["openrouter"]["model_count"]
    fake_openrouter.configure(down=True)  # every request answers 503
    (result,) = await synced.sync("openrouter")
    assert not result["ok"]
    assert "503" in result["error"]

    after = await providers(synced)
    op = after["openrouter"]
    assert op["status"] == "stale"
    assert op["stale"]
    assert op["model_count"] == count
    assert op["last_synced_at"] == before["openrouter"]["last_synced_at"]
    assert op["last_attempt_at"] > op["last_synced_at"]
    assert "503" in op["last_error"]
    assert after["ollama"]["status"] == "ok"

    body = (
        await synced.client.get("/providers/models", params={"provider": "openrouter", "limit": 5})
    ).json()
    assert body["total"] == count
    assert all(i["stale"] and i["last_synced_at"] == op["last_synced_at"] for i in body["items"])
    one = (await synced.client.get("/providers/models/openai/gpt-4o-mini")).json()
    assert one["stale"]
    ollama_item = (
        await synced.client.get("/providers/models", params={"provider": "ollama", "limit": 1})
    ).json()
    assert not ollama_item["items"][0]["stale"]

    fake_openrouter.configure(down=False)
    (again,) = await synced.sync("openrouter")
    assert again["ok"]
    assert again["added"] == again["removed"] == again["changed"] == 0
    assert (await providers(synced))["openrouter"]["status"] == "ok"


async def test_an_unreachable_provider_is_stale_too(synced: RunningCatalog, fake_ollama: FakeHandle) -> None:
    fake_ollama.stop()  # connection refused
    (result,) = await synced.sync("ollama")
    assert not result["ok"]
    state = (await providers(synced))["ollama"]
    assert state["status"] == "stale"
    assert state["model_count"] > 0
    assert (await synced.client.get("/providers/models/llama3.2")).status_code == 200


async def test_never_synced_provider_is_unavailable_with_no_models(
    start_catalog: StartCatalog, fake_openrouter: FakeHandle
) -> None:
    fake_openrouter.configure(down=True)
    async with start_catalog() as svc:
        results = {r["provider"]: r for r in await svc.sync()}
        assert not results["openrouter"]["ok"]
        assert results["ollama"]["ok"]
        state = (await providers(svc))["openrouter"]
        assert state["status"] == "unavailable"
        assert state["model_count"] == 0
        assert not state["stale"]
        total = (await svc.client.get("/providers/models", params={"provider": "openrouter"})).json()["total"]
        assert total == 0


async def test_the_background_loop_syncs_at_start_and_every_refresh(
    start_catalog: StartCatalog, fake_openrouter: FakeHandle
) -> None:
    async with start_catalog(catalog_sync_on_start=True, catalog_refresh_seconds=0.3) as svc:

        async def synced_ok() -> bool:
            return all(p["status"] == "ok" for p in (await providers(svc)).values() if p["enabled"])

        await wait_until(synced_ok)
        fake_openrouter.configure(down=True)

        async def went_stale() -> bool:
            return (await providers(svc))["openrouter"]["status"] == "stale"

        await wait_until(went_stale)
        fake_openrouter.configure(down=False)
        await wait_until(synced_ok)


# --- provider tests --------------------------------------------------------------------------------------
async def test_provider_tests_report_reachable_with_key_credits_and_version(synced: RunningCatalog) -> None:
    resp = await synced.client.post("/providers/test", json={"provider": "openrouter"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["reachable"]
    assert body["key_valid"] is True
    assert body["configured"]
    assert body["latency_ms"] is not None
    assert body["latency_ms"] >= 0
    assert "usage" in body["credits"]
    assert "limit" in body["credits"]
    ollama = (await synced.client.post("/providers/test", json={"provider": "ollama"})).json()
    assert ollama["reachable"]
    assert ollama["version"]
    assert ollama["key_valid"] is None


async def test_an_unreachable_provider_is_a_result_not_a_500(
    synced: RunningCatalog, fake_openrouter: FakeHandle, fake_ollama: FakeHandle
) -> None:
    fake_openrouter.stop()
    fake_ollama.stop()
    for name in ("openrouter", "ollama"):
        resp = await synced.client.post("/providers/test", json={"provider": name})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["provider"] == name
        assert body["reachable"] is False
        assert body["error"]


async def test_a_down_provider_answers_but_is_reported(
    synced: RunningCatalog, fake_openrouter: FakeHandle
) -> None:
    fake_openrouter.configure(down=True)
    body = (await synced.client.post("/providers/test", json={"provider": "openrouter"})).json()
    assert body["reachable"] is True
    assert body["key_valid"] is None
    assert "503" in body["error"]


async def test_a_bad_key_is_reported_invalid(start_catalog: StartCatalog) -> None:
    async with start_catalog(openrouter_api_key="sk-or-v1-wrong") as svc:
        body = (await svc.client.post("/providers/test", json={"provider": "openrouter"})).json()
        assert body["reachable"] is True
        assert body["key_valid"] is False
        assert body["error"]


async def test_no_key_is_reported_not_configured(start_catalog: StartCatalog) -> None:
    async with start_catalog(openrouter_api_key=None) as svc:
        body = (await svc.client.post("/providers/test", json={"provider": "openrouter"})).json()
        assert body["configured"] is False
        assert body["key_valid"] is False
        assert (await providers(svc))["openrouter"]["configured"] is False


@pytest.mark.parametrize("body", [{"provider": "azure"}, {}, {"provider": None}, []])
async def test_unknown_provider_is_422(synced: RunningCatalog, body: Any) -> None:
    resp = await synced.client.post("/providers/test", json=body)
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "validation_error"


# --- events ----------------------------------------------------------------------------------------------
async def read_events(correlation_id: str, expect: int, within: float = 30.0) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        CATALOG_EVENTS, **kafka_client_options(), auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + within
        while len(found) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            for records in batch.values():
                for record in records:
                    envelope = json.loads(record.value)
                    if envelope.get("correlationid") == correlation_id:
                        assert record.key == envelope["subject"].encode()
                        found.append(envelope)
    finally:
        await consumer.stop()
    return found


async def test_model_catalog_updated_arrives_on_catalog_events(
    start_catalog: StartCatalog, mongo_db: str
) -> None:
    raw = [m for m in fake_openrouter_app.load_catalog() if "text" in m["architecture"]["output_modalities"]]
    changed = [
        {**raw[1], "pricing": {**raw[1]["pricing"], "prompt": "0.00000999"}},
        *raw[2:],
        {**raw[2], "id": "acme/fresh-model:free", "name": "Acme: Fresh (free)"},
    ]
    first_run = f"catalog-test-{uuid.uuid4().hex}"
    async with start_catalog() as svc:
        results = {r["provider"]: r for r in await svc.sync(correlation_id=first_run)}
        assert results["openrouter"]["event_recorded"]
        assert results["ollama"]["event_recorded"]
        (quiet,) = await svc.sync("openrouter", correlation_id=first_run)
        assert quiet["ok"]
        assert not quiet["event_recorded"]
    events = await read_events(first_run, expect=2)
    by_provider = {e["data"]["provider"]: e for e in events}
    assert len(events) == 2
    assert set(by_provider) == {"openrouter", "ollama"}
    initial = by_provider["openrouter"]
    assert initial["type"] == "llmts.catalog.updated"
    assert initial["subject"] == "openrouter"
    assert initial["source"] == "catalog"
    assert sorted(initial["data"]["added"]) == sorted(m["id"] for m in raw)
    assert initial["data"]["total"] == len(raw)
    assert initial["data"]["removed"] == []

    # a second replica against the same database, pointed at a provider whose list changed
    second_run = f"catalog-test-{uuid.uuid4().hex}"
    state = FakeState(api_key=OPENROUTER_TEST_KEY)
    fake_app = fake_openrouter_app.create_app(state, catalog=changed)
    async with (
        start_fake_async(fake_app) as other,
        start_catalog(openrouter_url=other.base_url + "/api/v1") as svc,
    ):
        (result,) = await svc.sync("openrouter", correlation_id=second_run)
        assert (result["added"], result["removed"], result["changed"]) == (1, 1, 1)
        body = (await svc.client.get("/providers/models/acme/fresh-model:free")).json()
        assert body["free"]
        assert (await svc.client.get(f"/providers/models/{raw[0]['id']}")).status_code == 404
    (update,) = await read_events(second_run, expect=1)
    assert update["data"]["added"] == ["acme/fresh-model:free"]
    assert update["data"]["removed"] == [raw[0]["id"]]
    assert update["data"]["changed"] == [raw[1]["id"]]
    assert update["data"]["total"] == len(changed)


# --- the Mongo store itself ------------------------------------------------------------------------------
async def test_mongo_store_writes_only_what_changed_and_detects_races(
    mongo_db: str, fake_openrouter: FakeHandle
) -> None:
    client = create_client(MONGO_URL)
    provider = OpenRouterProvider(base_url=fake_openrouter.base_url, api_key=OPENROUTER_TEST_KEY)
    try:
        store = MongoCatalogStore(client[mongo_db], outbox=None)
        first = await handlers.sync_provider("openrouter", provider=provider, store=store)
        assert first.ok
        assert first.writes == first.total > 300
        second = await handlers.sync_provider("openrouter", provider=provider, store=store)
        assert second.writes == 0
        assert second.added == 0
        revision, fps = await store.published("openrouter")
        assert revision == 2
        assert len(fps) == first.total
        assert not await store.record_success(
            "openrouter",
            expected_revision=revision - 1,
            fingerprints=fps,
            synced_at=handlers.utcnow(),
            configured=True,
            event=None,
        )
        # a lost model document is repaired by the next sync, without an event (nothing changed upstream)
        await client[mongo_db]["models"].delete_one({"_id": "openrouter:openai/gpt-4o-mini"})
        third = await handlers.sync_provider("openrouter", provider=provider, store=store)
        assert third.writes == 1
        assert not third.event_recorded
        models = await store.all_models()
        assert len(models) == first.total
        assert {s.name for s in await store.provider_states()} == {"openrouter"}
    finally:
        await provider.aclose()
        await client.close()


# --- optional auth at the service ------------------------------------------------------------------------
async def test_require_auth_checks_the_bearer_token(
    mongo_db: str, fake_openrouter: FakeHandle, fake_ollama: FakeHandle
) -> None:
    signer = make_signer()
    settings = catalog_settings(
        mongo_db, fake_openrouter.base_url, fake_ollama.base_url, catalog_require_auth=True
    )
    app, _, _ = bootstrap(settings, verifier=signer.verifier())
    token = signer.token("u1", ttl=60)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://c") as c,
    ):
        assert (await c.get("/providers")).status_code == 401
        ok = await c.get("/providers", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        assert (await c.get("/health")).status_code == 200
