"""The process-level wiring every service shares: logging, tracing, Mongo, Kafka, background tasks, shutdown.

A service's ``bootstrap`` builds a ``ServiceRuntime`` (nothing connects yet), registers its consumers on
``runtime.broker`` and its periodic tasks, and the FastAPI lifespan calls ``start()``/``stop()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient

from llmts_common.kafka import EventPublisher, create_broker, flush_offsets
from llmts_common.kafka_security import faststream_security, start_explained
from llmts_common.logging import configure_logging
from llmts_common.mongo import (
    Database,
    Document,
    IndexSpec,
    ProcessedMessages,
    create_client,
    ensure_indexes,
    ping,
)
from llmts_common.settings import BaseServiceSettings
from llmts_common.tracing import setup_tracing

log = logging.getLogger("llmts.runtime")

BackgroundTask = Callable[[asyncio.Event], Awaitable[None]]


class ServiceRuntime:
    def __init__(
        self,
        settings: BaseServiceSettings,
        *,
        indexes: Sequence[IndexSpec] = (),
        use_kafka: bool = True,
        configure_process: bool = True,
    ) -> None:
        self.settings = settings
        self.name = settings.service_name
        if configure_process:
            configure_logging(self.name, level=settings.log_level, json_output=settings.log_json)
            setup_tracing(
                self.name, otlp_endpoint=settings.otel_exporter_otlp_endpoint, console=settings.otel_console
            )
        self.mongo: AsyncMongoClient[Document] = create_client(
            settings.mongo_url.get_secret_value(),
            server_selection_timeout_ms=settings.mongo_server_selection_timeout_ms,
            app_name=self.name,
        )
        self.db: Database = self.mongo[settings.database_name]
        self.indexes: list[IndexSpec] = [*indexes, *ProcessedMessages.indexes()]
        self.processed = ProcessedMessages(self.db)
        self.broker: KafkaBroker | None = (
            create_broker(
                settings.kafka_bootstrap_servers,
                client_id=settings.kafka_client_id or self.name,
                graceful_timeout=settings.shutdown_grace_seconds,
                security=faststream_security(settings),
            )
            if use_kafka
            else None
        )
        self.publisher: EventPublisher | None = (
            EventPublisher(
                self.broker,
                source=self.name,
                topic_prefix=settings.kafka_topic_prefix,
                schema_base_url=settings.schema_base_url,
            )
            if self.broker is not None
            else None
        )
        self._tasks: list[tuple[str, BackgroundTask]] = []
        self._running: list[asyncio.Task[None]] = []
        self._closers: list[Callable[[], Awaitable[object]]] = []
        self.stopping = asyncio.Event()
        self.started = False

    def add_background(self, name: str, task: BackgroundTask) -> None:
        self._tasks.append((name, task))

    def add_closer(self, close: Callable[[], Awaitable[object]]) -> None:
        """Close a client (HTTP, provider, …) on stop, after the background tasks that may use it have ended."""
        self._closers.append(close)

    async def start(self) -> None:
        await self._retry("mongo indexes", lambda: ensure_indexes(self.db, self.indexes))
        if self.broker is not None:
            broker = self.broker
            await self._retry("kafka", lambda: start_explained(broker.start, self.settings))
        for name, task in self._tasks:
            self._running.append(asyncio.create_task(self._guard(name, task), name=f"{self.name}:{name}"))
        self.started = True
        log.info("%s started", self.name)

    async def _retry(self, what: str, fn: Callable[[], Awaitable[Any]], attempts: int = 30) -> None:
        for i in range(attempts):
            try:
                await fn()
                return
            except Exception as exc:
                if i == attempts - 1:
                    raise
                log.warning("%s not ready yet (%s), retrying", what, exc)
                await asyncio.sleep(min(2.0, 0.2 * (i + 1)))

    async def _guard(self, name: str, task: BackgroundTask) -> None:
        while not self.stopping.is_set():
            try:
                await task(self.stopping)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background task %s crashed; restarting", name)
                await asyncio.sleep(1.0)

    async def stop(self) -> None:
        """Stop taking new work, let in-flight work finish or checkpoint, commit offsets, close clients."""
        self.stopping.set()
        if self.broker is not None:
            with contextlib.suppress(Exception):
                await flush_offsets(self.broker)  # grouped commits: what was handled so far
            with contextlib.suppress(Exception):
                await self.broker.stop()
        if self._running:
            _, pending = await asyncio.wait(self._running, timeout=self.settings.shutdown_grace_seconds)
            for t in pending:
                t.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*pending, return_exceptions=True)
        for close in self._closers:
            try:
                await close()
            except Exception:
                log.exception("closing a client failed")
        await self.mongo.close()
        log.info("%s stopped", self.name)

    async def mongo_ready(self) -> dict[str, Any]:
        return {"ready": await ping(self.mongo)}

    async def kafka_ready(self) -> dict[str, Any]:
        if self.broker is None:
            return {"ready": True, "note": "not used"}
        try:
            ok = await self.broker.ping(timeout=2.0)
        except Exception:
            ok = False
        return {"ready": bool(ok)}

    def checks(self) -> dict[str, Callable[[], Awaitable[dict[str, Any]]]]:
        return {"mongo": self.mongo_ready, "kafka": self.kafka_ready}

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()
