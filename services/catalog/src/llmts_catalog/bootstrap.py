"""Composition root of the catalog service: builds real adapters unless fakes are passed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI

from llmts_catalog import handlers
from llmts_catalog.adapters.cache import CachedCatalog
from llmts_catalog.adapters.mongo import INDEXES, PROVIDERS, MongoCatalogStore
from llmts_catalog.domain.catalog import ProviderState
from llmts_catalog.domain.ports import CatalogStore
from llmts_catalog.entrypoints.http import CatalogContext, mount
from llmts_catalog.settings import CatalogSettings
from llmts_common.auth import JwksVerifier
from llmts_common.logging import correlation_id_var
from llmts_common.outbox import EmbeddedOutbox, run_relay
from llmts_common.runtime import ServiceRuntime
from llmts_common.web import create_app as create_http_app
from llmts_providers.base import Provider
from llmts_providers.factory import ProviderFactory
from llmts_providers.settings import KNOWN_PROVIDERS

log = logging.getLogger("llmts.catalog")

__all__ = ["INDEXES", "Catalog", "bootstrap", "create_app"]


class Catalog:
    """The running pieces, handed to tests: the store, the read cache, the providers and the sync."""

    def __init__(
        self,
        settings: CatalogSettings,
        store: CatalogStore,
        factory: ProviderFactory,
        configured: Mapping[str, bool],
    ) -> None:
        self.settings = settings
        self.store = store
        self.factory = factory
        self.configured = dict(configured)
        defaults = {
            name: ProviderState(
                name=name, enabled=name in settings.catalog_providers, configured=configured[name]
            )
            for name in KNOWN_PROVIDERS
        }
        self.cache = CachedCatalog(store, defaults)
        self._locks = {name: asyncio.Lock() for name in KNOWN_PROVIDERS}

    def provider(self, name: str) -> Provider:
        return self.factory.get(name)

    async def sync_one(self, name: str) -> handlers.SyncOutcome:
        async with self._locks[name]:  # one sync per provider at a time in this process
            try:
                async with asyncio.timeout(self.settings.catalog_sync_timeout_seconds):
                    return await handlers.sync_provider(
                        name,
                        provider=self.provider(name),
                        store=self.store,
                        configured=self.configured[name],
                    )
            except TimeoutError:
                error = f"sync timed out after {self.settings.catalog_sync_timeout_seconds:g}s"
                await self.store.record_failure(
                    name, error=error, at=handlers.utcnow(), configured=self.configured[name]
                )
                return handlers.SyncOutcome(provider=name, ok=False, error=error)

    async def sync_all(self, names: Sequence[str] | None = None) -> list[handlers.SyncOutcome]:
        wanted = list(names) if names else list(self.settings.catalog_providers)
        results = await asyncio.gather(*(self.sync_one(n) for n in wanted), return_exceptions=True)
        outcomes: list[handlers.SyncOutcome] = []
        for name, result in zip(wanted, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                log.error("catalog sync of %s could not be stored: %r", name, result)
                outcomes.append(handlers.SyncOutcome(provider=name, ok=False, error=type(result).__name__))
            else:
                outcomes.append(result)
        try:  # warm the read cache here, so no request pays for reloading the catalog
            await self.cache.snapshot()
        except Exception as exc:
            log.warning("catalog read cache not refreshed: %s", exc)
        return outcomes

    async def sync_loop(self, stop: asyncio.Event) -> None:
        """Sync at start, then every ``CATALOG_REFRESH_SECONDS`` until ``stop``."""
        while not stop.is_set():
            token = correlation_id_var.set(f"catalog-sync-{uuid.uuid4().hex[:12]}")
            try:
                await self.sync_all()
            finally:
                correlation_id_var.reset(token)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.settings.catalog_refresh_seconds)


def bootstrap(
    settings: CatalogSettings | None = None,
    *,
    store: CatalogStore | None = None,
    providers: Mapping[str, Provider] | None = None,
    verifier: JwksVerifier | None = None,
) -> tuple[FastAPI, ServiceRuntime, Catalog]:
    settings = settings or CatalogSettings()
    runtime = ServiceRuntime(settings, indexes=INDEXES)
    assert runtime.publisher is not None
    outbox = EmbeddedOutbox([runtime.db[PROVIDERS]], runtime.publisher)
    store = store or MongoCatalogStore(runtime.db, outbox)
    factory = ProviderFactory(settings.provider_settings(), providers=providers)
    # computed before any provider is built: the factory counts a built provider as configured
    configured = {name: factory.configured(name) for name in KNOWN_PROVIDERS}
    catalog = Catalog(settings, store, factory, configured)
    if settings.catalog_require_auth and verifier is None:
        verifier = JwksVerifier(settings.jwks_url, issuer=settings.jwt_issuer, audience=settings.jwt_audience)

    if settings.catalog_sync_on_start:
        runtime.add_background("catalog-sync", catalog.sync_loop)

    async def relay(stop: Any) -> None:
        await run_relay([outbox], interval=settings.catalog_outbox_relay_seconds, stop=stop)

    runtime.add_background("outbox-relay", relay)

    runtime.add_closer(factory.aclose)

    app = create_http_app(
        service=settings.service_name,
        title="llmts catalog",
        description="Model catalog of OpenRouter, Ollama and an OpenAI-compatible server: sync, search, prices, "
        "provider tests.",
        lifespan=runtime.lifespan,
        checks=runtime.checks(),
        max_body_bytes=settings.max_body_bytes,
        max_json_depth=settings.max_json_depth,
    )
    app.state.runtime = runtime
    mount(
        app,
        CatalogContext(
            settings=settings,
            catalog=catalog.cache,
            provider=catalog.provider,
            configured=configured,
            sync_all=catalog.sync_all,
            verifier=verifier if settings.catalog_require_auth else None,
        ),
    )
    return app, runtime, catalog


def create_app() -> FastAPI:
    """Factory for ``uvicorn --factory``."""
    return bootstrap()[0]
