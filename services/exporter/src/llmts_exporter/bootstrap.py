"""Composition root of the exporter service: builds real adapters unless fakes are passed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from llmts_common.auth import JwksVerifier
from llmts_common.envelope import utcnow
from llmts_common.outbox import EmbeddedOutbox, run_relay
from llmts_common.runtime import ServiceRuntime
from llmts_common.web import create_app as create_http_app
from llmts_exporter import handlers
from llmts_exporter.adapters.erasure import MongoUserErasure
from llmts_exporter.adapters.filestore import DirectoryStore, GridFSStore
from llmts_exporter.adapters.mongo import EXPORTS, INDEXES, MongoExportRepository, MongoJobProjection
from llmts_exporter.domain.links import DownloadLinks
from llmts_exporter.domain.ports import Clock, ExportRepository, FileStore, JobProjection
from llmts_exporter.entrypoints import account_events, http, stream
from llmts_exporter.settings import ExporterSettings
from llmts_exporter.worker import ExportPolicy, ExportWorker

log = logging.getLogger("llmts.exporter")


@dataclass
class Exporter:
    """What ``bootstrap`` built; tests reach the worker and the repositories through it."""

    settings: ExporterSettings
    runtime: ServiceRuntime
    jobs: JobProjection
    exports: ExportRepository
    store: FileStore
    worker: ExportWorker
    clock: Clock
    subscribers: list[Any] = field(default_factory=list)

    async def cleanup_once(self) -> int:
        now = self.clock()
        removed = await handlers.cleanup_expired(
            exports=self.exports,
            store=self.store,
            now=now,
            ttl=timedelta(days=self.settings.export_ttl_days),
        )
        await self.runtime.processed.purge_older_than(
            now - timedelta(days=self.settings.processed_retention_days)
        )
        return removed

    def consuming(self) -> bool:
        """True once every subscriber has partitions assigned."""
        for sub in self.subscribers:
            consumer = getattr(sub, "consumer", None)
            if consumer is None or not consumer.assignment():
                return False
        return True


def policy_of(settings: ExporterSettings) -> ExportPolicy:
    return ExportPolicy(
        wait_for_job=timedelta(seconds=settings.export_wait_for_job_seconds),
        recheck=timedelta(seconds=settings.export_recheck_seconds),
        lease=timedelta(seconds=settings.export_lease_seconds),
        max_attempts=settings.export_max_attempts,
        concurrency=settings.export_concurrency,
        page_size=settings.export_page_size,
    )


def links_of(settings: ExporterSettings) -> DownloadLinks | None:
    """The signer of ExportReady's download links (None without a key: no link, signed downloads refused)."""
    key = settings.link_key
    if key is None:
        log.warning("ExportReady carries no download link (neither a link key nor an internal token is set)")
        return None
    return DownloadLinks(
        key=key,
        base_url=settings.public_base_url,
        lifetime=timedelta(seconds=settings.export_link_ttl_seconds),
    )


async def _run_worker(worker: ExportWorker, stop: asyncio.Event) -> None:
    """The worker until ``stop``; a crash is logged and the worker restarted a second later."""
    while not stop.is_set():
        try:
            await worker.run(stop)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("export worker crashed; restarting")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)


def _worker_first_lifespan(
    runtime: ServiceRuntime, worker: ExportWorker, service_name: str
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """The app's lifespan: the worker starts before the runtime and stops before it.

    The worker needs only MongoDB, so it starts before the runtime: joining the Kafka consumer group can take a
    while after a kill -9 (the dead member's session must lapse first), and the exports the dead process held
    must be taken over as soon as their leases expire, not after the group settles.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(_run_worker(worker, stop), name=f"{service_name}:export-worker")

        async def halt() -> None:
            stop.set()
            await asyncio.gather(task, return_exceptions=True)

        try:
            async with runtime.lifespan(app):
                try:
                    yield
                finally:
                    await halt()  # before the runtime closes the Mongo client
        finally:
            await halt()

    return lifespan


def _add_background(
    runtime: ServiceRuntime, settings: ExporterSettings, outbox: EmbeddedOutbox, exporter: Exporter
) -> None:
    """The outbox relay and the periodic clean-up of expired exports."""

    async def relay(stop: asyncio.Event) -> None:
        await run_relay([outbox], interval=settings.outbox_relay_interval_seconds, stop=stop)

    async def cleanup(stop: asyncio.Event) -> None:
        while not stop.is_set():
            await exporter.cleanup_once()
            try:
                await asyncio.wait_for(stop.wait(), timeout=settings.export_cleanup_interval_seconds)
            except TimeoutError:
                continue

    runtime.add_background("outbox-relay", relay)
    runtime.add_background("export-cleanup", cleanup)


def bootstrap(
    settings: ExporterSettings | None = None,
    *,
    verifier: JwksVerifier | None = None,
    store: FileStore | None = None,
    clock: Clock = utcnow,
) -> tuple[FastAPI, Exporter]:
    settings = settings or ExporterSettings()
    runtime = ServiceRuntime(settings, indexes=INDEXES)
    assert runtime.publisher is not None
    outbox = EmbeddedOutbox([runtime.db[EXPORTS]], runtime.publisher)
    jobs = MongoJobProjection(runtime.db)
    exports = MongoExportRepository(runtime.db, outbox)
    if store is None:
        store = (
            DirectoryStore(settings.export_dir)
            if settings.export_store == "dir"
            else GridFSStore(runtime.db, settings.export_gridfs_bucket)
        )
    links = links_of(settings)
    worker = ExportWorker(
        jobs=jobs, exports=exports, store=store, clock=clock, policy=policy_of(settings), links=links
    )
    exporter = Exporter(
        settings=settings,
        runtime=runtime,
        jobs=jobs,
        exports=exports,
        store=store,
        worker=worker,
        clock=clock,
    )
    exporter.subscribers = stream.register(
        runtime,
        group_id=settings.kafka_group_id,
        jobs=jobs,
        exports=exports,
        clock=clock,
        wake=worker.wake,
        max_attempts=settings.kafka_consumer_max_attempts,
    )
    account_events.register(
        runtime,
        MongoUserErasure(runtime.db, store),
        group_id=f"{settings.kafka_group_id}-accounts",
        max_attempts=settings.kafka_consumer_max_attempts,
    )

    lifespan = _worker_first_lifespan(runtime, worker, settings.service_name)
    _add_background(runtime, settings, outbox, exporter)

    app = create_http_app(
        service=settings.service_name,
        title="llmts exporter",
        description="Builds export files of a job's items; reached through the gateway.",
        lifespan=lifespan,
        checks=runtime.checks(),
        max_body_bytes=settings.max_body_bytes,
        max_json_depth=settings.max_json_depth,
    )
    http.mount(
        app,
        http.HttpContext(
            verifier=verifier
            or JwksVerifier(settings.jwks_url, issuer=settings.jwt_issuer, audience=settings.jwt_audience),
            jobs=jobs,
            exports=exports,
            store=store,
            links=links,
            clock=clock,
        ),
    )
    app.state.runtime = runtime
    app.state.exporter = exporter
    return app, exporter


def create_app() -> FastAPI:
    """Factory for ``uvicorn --factory``."""
    return bootstrap()[0]
