"""Composition root of the templates service: builds real adapters unless fakes are passed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from fastapi import FastAPI

from llmts_common.auth import JwksVerifier
from llmts_common.mongo import utcnow
from llmts_common.outbox import EmbeddedOutbox
from llmts_common.runtime import ServiceRuntime
from llmts_common.web import create_app as create_http_app
from llmts_providers.settings import ProviderSettings
from llmts_templates.adapters.catalog import CatalogPriceClient
from llmts_templates.adapters.datasets_mongo import INDEXES as DATASET_INDEXES
from llmts_templates.adapters.datasets_mongo import MongoDatasetRepository
from llmts_templates.adapters.erasure import MongoUserErasure
from llmts_templates.adapters.mongo import INDEXES, MongoTemplateRepository
from llmts_templates.adapters.provider_body import ProviderRequestBuilder
from llmts_templates.datasets import DatasetDeps
from llmts_templates.domain.datasets import DatasetLimits
from llmts_templates.domain.examples import load_examples
from llmts_templates.domain.ports import PriceSource
from llmts_templates.entrypoints import account_events, datasets_http
from llmts_templates.entrypoints.http import AppServices, router
from llmts_templates.handlers import Deps
from llmts_templates.settings import TemplatesSettings
from llmts_templating.pool import RenderPool

log = logging.getLogger("llmts.templates")

PURGE_EVERY_TICKS = 600


def render_pool(settings: TemplatesSettings, runtime: ServiceRuntime) -> RenderPool:
    """Validation and preview compile and render in worker processes with a hard deadline (libs/templating
    ``RenderPool``), started with the runtime (or at first use) and stopped after it."""
    pool = RenderPool(workers=settings.render_workers)

    async def start(_stopping: asyncio.Event) -> None:
        pool.start()

    runtime.add_background("render-workers", start)
    runtime.add_closer(pool.aclose)
    return pool


def dataset_deps(settings: TemplatesSettings, runtime: ServiceRuntime) -> DatasetDeps:
    limits = DatasetLimits(
        max_bytes=settings.dataset_max_bytes,
        max_rows=settings.dataset_max_rows,
        max_columns=settings.dataset_max_columns,
        max_datasets_per_user=settings.datasets_per_user,
    )
    return DatasetDeps(MongoDatasetRepository(runtime.db), limits, settings.dataset_spool_dir)


def relay_loop(
    settings: TemplatesSettings,
    outbox: EmbeddedOutbox,
    repo: MongoTemplateRepository,
    wake: asyncio.Event,
    datasets: DatasetDeps | None,
) -> Callable[[asyncio.Event], Awaitable[None]]:
    """Publish pending template events: at once after a write (``wake``), else every interval; now and then purge
    tombstones and dataset uploads cut short by a crash."""

    async def relay(stop: asyncio.Event) -> None:
        ticks = 0
        while not stop.is_set():
            wake.clear()
            try:
                await outbox.relay_once()
            except Exception as exc:  # Kafka or Mongo down: try again next tick
                log.warning("template outbox relay tick failed: %s", exc)
            ticks += 1
            if ticks % PURGE_EVERY_TICKS == 0:
                with contextlib.suppress(Exception):
                    cutoff = utcnow() - timedelta(seconds=settings.tombstone_retention_seconds)
                    await repo.purge_tombstones(cutoff)
                if datasets is not None:
                    with contextlib.suppress(Exception):
                        await datasets.repo.purge_stale(utcnow() - timedelta(hours=1))
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
            await asyncio.wait(
                waiters, timeout=settings.outbox_relay_interval_seconds, return_when="FIRST_COMPLETED"
            )
            for w in waiters:
                w.cancel()

    return relay


def bootstrap(
    settings: TemplatesSettings | None = None,
    *,
    verifier: JwksVerifier | None = None,
    prices: PriceSource | None = None,
) -> tuple[FastAPI, ServiceRuntime]:
    settings = settings or TemplatesSettings()
    runtime = ServiceRuntime(settings, indexes=[*INDEXES, *DATASET_INDEXES])
    assert runtime.publisher is not None
    repo = MongoTemplateRepository(runtime.db)
    outbox = EmbeddedOutbox([repo.templates], runtime.publisher)
    wake = asyncio.Event()
    catalog = CatalogPriceClient(settings.catalog_url, timeout=settings.catalog_timeout_seconds)
    bodies = ProviderRequestBuilder(ProviderSettings())  # OPENAI_COMPATIBLE_* shape its preview bodies
    renderer = render_pool(settings, runtime)
    datasets = dataset_deps(settings, runtime)
    svc = AppServices(
        deps=Deps(
            repo=repo,
            event=outbox.entry,
            notify=wake.set,
            examples=load_examples(),
            inspector=renderer,
            datasets=datasets.repo,
        ),
        verifier=verifier
        or JwksVerifier(settings.jwks_url, issuer=settings.jwt_issuer, audience=settings.jwt_audience),
        renderer=renderer,
        bodies=bodies,
        prices=prices or catalog,
        default_model=settings.default_model,
        default_max_tokens=settings.default_max_tokens,
        datasets=datasets,
    )

    runtime.add_background("outbox-relay", relay_loop(settings, outbox, repo, wake, svc.datasets))
    account_events.register(
        runtime, MongoUserErasure(runtime.db), group_id=f"{settings.consumer_group}-accounts"
    )

    runtime.add_closer(catalog.aclose)
    runtime.add_closer(bodies.aclose)

    app = create_http_app(
        service=settings.service_name,
        title="llmts templates",
        lifespan=runtime.lifespan,
        checks=runtime.checks(),
        max_body_bytes=settings.max_body_bytes,
        max_json_depth=settings.max_json_depth,
        streamed_bodies={"POST /datasets": settings.dataset_max_bytes},
    )
    app.state.runtime = runtime
    app.state.services = svc
    app.state.internal_token = (
        settings.internal_token.get_secret_value() if settings.internal_token is not None else None
    )
    app.include_router(router)
    app.include_router(datasets_http.router)
    app.include_router(datasets_http.internal)
    return app, runtime


def create_app() -> FastAPI:
    """Factory for ``uvicorn --factory``."""
    return bootstrap()[0]
