"""The process-level wiring every service shares: logging, tracing, Mongo, Kafka, background tasks, shutdown.

A service's ``bootstrap`` builds a ``ServiceRuntime`` (nothing connects yet), registers its consumers on
``runtime.broker`` and its periodic tasks, and the FastAPI lifespan calls ``start()``/``stop()``.

Start-up never gives up on a dependency (a pod starting during an outage waits instead of exiting): MongoDB is
waited for with capped backoff before ``start()`` returns (the service's own start-up code reads it), unless
``serve_before_mongo`` (a service whose start-up code needs no database: it serves liveness at once and stays
unready until MongoDB answers); Kafka is waited for at most ``start_wait_s`` and then connected in the
background, so the HTTP server (liveness, reads) comes up while Kafka is away and the consumers start when it is
back. The background tasks start once Kafka is connected, or once MongoDB is with ``serve_without_kafka`` (the
gateway: its outbox relay rides out a Kafka outage).

Readiness (``checks()``) gates on what the pod needs to serve: its database and a finished start-up. Kafka is
reported with ``required: false``: taking pods out of service does not bring Kafka back, and without it a
service still answers its HTTP routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient

from llmts_common.kafka import EventPublisher, create_broker, flush_offsets
from llmts_common.kafka_security import faststream_security, start_explained
from llmts_common.logging import configure_logging
from llmts_common.looplag import LoopLag
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
from llmts_common.web import ReadinessCheck, Reported

log = logging.getLogger("llmts.runtime")

BackgroundTask = Callable[[asyncio.Event], Awaitable[None]]

START_WAIT_S = 10.0
"""How long ``start()`` waits for Kafka (and, with ``serve_before_mongo``, MongoDB) before going on and
connecting in the background."""
RETRY_CAP_S = 10.0


def retry_delay(attempt: int, *, base: float = 0.2, cap: float = RETRY_CAP_S) -> float:
    """Seconds before try ``attempt + 1`` of a dependency at start-up: exponential, capped, with jitter."""
    return float(min(cap, base * 2 ** min(attempt, 16)) * (0.75 + random.random() / 4))


_frozen = False


def freeze_startup_objects() -> int:
    """Move every object alive once a service has started (modules, classes, routes, schemas, clients: ~220 000 in
    the generator) out of the cyclic garbage collector's generations, once per process; returns how many (0 on a
    later call). A full collection walks every tracked object: with them, the generator's generation-2 collections
    under one user's 10,000-item backlog took ~200 ms each, the event loop — every other user's job — stalled that
    long; without them 15-40 ms (issue 14, bench-fairness). Objects created later are collected as before; only
    cyclic garbage among the frozen ones would never be freed (start-up objects live as long as the process)."""
    global _frozen
    if _frozen:
        return 0
    _frozen = True
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class ServiceRuntime:
    def __init__(
        self,
        settings: BaseServiceSettings,
        *,
        indexes: Sequence[IndexSpec] = (),
        use_kafka: bool = True,
        configure_process: bool = True,
        serve_without_kafka: bool = False,
        serve_before_mongo: bool = False,
        start_wait_s: float = START_WAIT_S,
    ) -> None:
        """``serve_without_kafka``: start the background tasks before Kafka is connected (they ride out its
        absence themselves); ``serve_before_mongo``: ``start()`` does not wait for MongoDB beyond
        ``start_wait_s`` either (only for a service whose own start-up code needs no database);
        ``start_wait_s``: how long ``start()`` waits before connecting the rest in the background."""
        self.settings = settings
        self.name = settings.service_name
        self.configure_process = configure_process
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
        self.loop_lag = LoopLag()  # llmts_event_loop_lag_seconds; read by code of the process (the generator)
        self._tasks.append(("loop-lag", self.loop_lag.run))
        self._running: list[asyncio.Task[None]] = []
        self._closers: list[Callable[[], Awaitable[object]]] = []
        self.stopping = asyncio.Event()
        self.serve_without_kafka = serve_without_kafka
        self.serve_before_mongo = serve_before_mongo
        self.start_wait_s = start_wait_s
        self.started = False  # the database is set up: the pod can serve
        self.kafka_connected = False
        self._db_ready = asyncio.Event()
        self._setup_task: asyncio.Task[None] | None = None

    def add_background(self, name: str, task: BackgroundTask) -> None:
        self._tasks.append((name, task))

    def add_closer(self, close: Callable[[], Awaitable[object]]) -> None:
        """Close a client (HTTP, provider, …) on stop, after the background tasks that may use it have ended."""
        self._closers.append(close)

    async def start(self) -> None:
        """Wait for MongoDB (however long it takes, or at most ``start_wait_s`` with ``serve_before_mongo``), then
        for Kafka within ``start_wait_s``; what is not connected by then is connected in the background."""
        setup = self._setup_task = asyncio.create_task(self._setup(), name=f"{self.name}:setup")
        if not self.serve_before_mongo:
            db_ready = asyncio.create_task(self._db_ready.wait())
            await asyncio.wait({setup, db_ready}, return_when=asyncio.FIRST_COMPLETED)
            db_ready.cancel()
            if setup.done() and not self.started:
                setup.result()  # stopped while waiting for the database: CancelledError
        done, _ = await asyncio.wait({setup}, timeout=self.start_wait_s)
        if not done:
            waiting = "Kafka" if self.started else "MongoDB"
            log.warning(
                "%s serving without %s for now; still connecting in the background", self.name, waiting
            )
        log.info("%s started", self.name)

    async def _setup(self) -> None:
        await self._wait_for("mongo", lambda: ensure_indexes(self.db, self.indexes))
        self.started = True
        self._db_ready.set()
        if self.broker is None or self.serve_without_kafka:
            self._start_tasks()
        if self.broker is None:
            return
        broker = self.broker
        await self._wait_for("kafka", lambda: start_explained(broker.start, self.settings))
        self.kafka_connected = True
        if not self.serve_without_kafka:
            self._start_tasks()
        log.info("%s connected to Kafka", self.name)

    async def wait_for_kafka(self) -> None:
        """Until Kafka is connected (``start()`` goes on without it after ``start_wait_s``): for code that must
        publish or consume right after start-up, e.g. tests (bound it with ``asyncio.timeout``; cancelling the
        wait does not stop the connecting)."""
        if self._setup_task is not None:
            await asyncio.shield(self._setup_task)

    def _start_tasks(self) -> None:
        for name, task in self._tasks:
            self._running.append(asyncio.create_task(self._guard(name, task), name=f"{self.name}:{name}"))

    async def _wait_for(self, what: str, fn: Callable[[], Awaitable[Any]]) -> None:
        """Call ``fn`` until it succeeds or the runtime stops, with capped backoff; a dependency that is away at
        start-up is waited for, never given up on (the pod stays alive and says so in its log)."""
        attempt = 0
        while True:
            try:
                await fn()
                if attempt:
                    log.info("%s reachable after %d attempts", what, attempt + 1)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.stopping.is_set():
                    raise asyncio.CancelledError(f"{self.name} stopped while waiting for {what}") from exc
                delay = retry_delay(attempt)
                log.warning(
                    "%s not reachable yet (%s: %s), retrying in %.1f s",
                    what,
                    type(exc).__name__,
                    str(exc)[:200],
                    delay,
                )
                attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=delay)
            if self.stopping.is_set():
                raise asyncio.CancelledError(f"{self.name} stopped while waiting for {what}")

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
        if self._setup_task is not None and not self._setup_task.done():
            self._setup_task.cancel()
            with contextlib.suppress(BaseException):
                await self._setup_task
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

    async def startup_ready(self) -> dict[str, Any]:
        return {"ready": self.started}

    async def kafka_ready(self) -> dict[str, Any]:
        """Reported, never required (``required: false``): see the module docstring."""
        if self.broker is None:
            return {"ready": True, "required": False, "note": "not used"}
        ok = False
        if self.kafka_connected:
            try:
                ok = bool(await self.broker.ping(timeout=1.5))
            except Exception:
                ok = False
        return {"ready": ok, "required": False, "connected": self.kafka_connected}

    def checks(self) -> dict[str, ReadinessCheck]:
        return {"startup": self.startup_ready, "mongo": self.mongo_ready, "kafka": Reported(self.kafka_ready)}

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        await self.start()
        if self.configure_process:  # a service process (in-process tests pass configure_process=False)
            log.info(
                "%s: %d start-up objects frozen for the garbage collector",
                self.name,
                freeze_startup_objects(),
            )
        try:
            yield
        finally:
            await self.stop()
