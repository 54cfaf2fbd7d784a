"""The catalog against the real local MongoDB-wire server and Kafka, with the fake providers in-process."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from tests.fakes.fixtures import (  # noqa: F401  (fixtures re-exported for pytest)
    OPENROUTER_TEST_KEY,
    FakeHandle,
    fake_ollama,
    fake_ollama_server,
    fake_openrouter,
    fake_openrouter_server,
)
from tests.support.internal import INTERNAL_TOKEN, internal_headers
from tests.support.names import unique_db

from llmts_catalog.bootstrap import Catalog, bootstrap
from llmts_catalog.settings import CatalogSettings
from llmts_common.mongo import create_client

MONGO_URL = os.environ.get("MONGO_URL", "mongodb://127.0.0.1:27017")
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


@dataclass
class RunningCatalog:
    client: httpx.AsyncClient
    catalog: Catalog
    settings: CatalogSettings
    transport: httpx.ASGITransport

    async def sync(
        self, provider: str | None = None, correlation_id: str | None = None
    ) -> list[dict[str, Any]]:
        headers = {"x-correlation-id": correlation_id} if correlation_id else {}
        resp = await self.client.post(
            "/providers/sync", json={"provider": provider} if provider else {}, headers=headers
        )
        assert resp.status_code == 200, resp.text
        items: list[dict[str, Any]] = resp.json()["items"]
        return items


@pytest.fixture
async def mongo_db() -> AsyncIterator[str]:
    """A database of its own per test (dropped after); shared data is never touched."""
    name = unique_db("catalog")
    yield name
    client = create_client(MONGO_URL, server_selection_timeout_ms=10_000)
    try:
        await client.drop_database(name)
    finally:
        await client.close()


def catalog_settings(
    mongo_db: str, openrouter_url: str, ollama_url: str, **overrides: Any
) -> CatalogSettings:
    values: dict[str, Any] = {
        "mongo_url": MONGO_URL,
        "mongo_db": mongo_db,
        "kafka_bootstrap_servers": KAFKA,
        "openrouter_base_url": openrouter_url,
        "openrouter_api_key": OPENROUTER_TEST_KEY,
        "ollama_base_url": ollama_url,
        "catalog_providers": ["openrouter", "ollama"],
        "catalog_sync_on_start": False,
        "provider_timeout_seconds": 10.0,
        "provider_connect_timeout_seconds": 2.0,
        "log_json": False,
        "shutdown_grace_seconds": 5.0,
        "internal_token": INTERNAL_TOKEN,
    }
    values.update(overrides)
    return CatalogSettings(**values)


StartCatalog = Callable[..., AbstractAsyncContextManager[RunningCatalog]]


@pytest.fixture
def start_catalog(
    mongo_db: str,
    fake_openrouter: FakeHandle,  # noqa: F811  (the fixture imported above)
    fake_ollama: FakeHandle,  # noqa: F811
) -> StartCatalog:
    """``async with start_catalog(**settings overrides) as svc`` runs the app's lifespan (Mongo, Kafka, loops)."""

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[RunningCatalog]:
        overrides.setdefault("openrouter_url", fake_openrouter.base_url)
        overrides.setdefault("ollama_url", fake_ollama.base_url)
        settings = catalog_settings(
            overrides.pop("mongo_db", mongo_db),
            overrides.pop("openrouter_url"),
            overrides.pop("ollama_url"),
            **overrides,
        )
        app, _runtime, catalog = bootstrap(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://catalog", headers=internal_headers()
            ) as client:
                yield RunningCatalog(client, catalog, settings, transport)

    return start


@pytest.fixture
async def synced(start_catalog: StartCatalog) -> AsyncIterator[RunningCatalog]:
    async with start_catalog() as svc:
        results = await svc.sync()
        assert all(r["ok"] for r in results), results
        yield svc
