"""Composition root of the gateway."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from llmts_common.auth import JwksVerifier
from llmts_common.contracts import GenerationRequested
from llmts_common.outbox import Outbox, StoredMessage, run_relay
from llmts_common.runtime import ServiceRuntime
from llmts_common.web import Reported
from llmts_common.web import create_app as create_http_app
from llmts_gateway import handlers
from llmts_gateway.adapters.accounts import COLLECTION as REVOKED_USERS
from llmts_gateway.adapters.accounts import INDEXES as ACCOUNT_INDEXES
from llmts_gateway.adapters.accounts import RevocationCheckingVerifier, RevokedUsers
from llmts_gateway.adapters.commands import OutboxCommands
from llmts_gateway.adapters.comparisons import COLLECTION as COMPARISONS
from llmts_gateway.adapters.comparisons import INDEXES as COMPARISON_INDEXES
from llmts_gateway.adapters.comparisons import MongoComparisons
from llmts_gateway.adapters.hub import EventHub
from llmts_gateway.adapters.services import CatalogHttp, GeneratorHttp, TemplatesHttp
from llmts_gateway.adapters.upstreams import SERVICES, Upstreams
from llmts_gateway.adapters.usage import COLLECTION as USAGE_COLLECTION
from llmts_gateway.adapters.usage import MongoUsageLedger
from llmts_gateway.deps import GatewayContext
from llmts_gateway.domain.quotas import Limits
from llmts_gateway.entrypoints import account_events, openapi, security, stream, usage_events
from llmts_gateway.entrypoints.http import mount_routes
from llmts_gateway.handlers import Deps
from llmts_gateway.settings import GatewaySettings

DESCRIPTION = """
The public API of the LLM Template System. Authenticate with `Authorization: Bearer <access token>` (from
`POST /auth/login`). Errors are always `{"error": {"code", "message", "details"}}`.
Commands (generation, exports) answer **202** with an id to poll or watch.
"""


def _operation_id(route: APIRoute) -> str:
    return f"{route.tags[0] if route.tags else 'api'}-{route.name}"


def bootstrap(
    settings: GatewaySettings | None = None, *, verifier: JwksVerifier | None = None
) -> tuple[FastAPI, GatewayContext, ServiceRuntime]:
    settings = _replica_settings(settings or GatewaySettings())
    # Kafka away: reads, login and commands (into the outbox) go on; the relay publishes when it is back.
    # Mongo away at start: liveness served at once (nothing needs it before a request), unready until it answers.
    runtime = ServiceRuntime(
        settings,
        indexes=[*Outbox.indexes(), *ACCOUNT_INDEXES, *COMPARISON_INDEXES],
        serve_without_kafka=True,
        serve_before_mongo=True,
    )
    assert runtime.publisher is not None
    hub = EventHub()
    upstreams = _upstreams(settings)
    revoked = RevokedUsers(
        runtime.db[REVOKED_USERS], retention=timedelta(seconds=settings.revoked_users_retention_seconds)
    )
    ctx = GatewayContext(
        settings=settings,
        verifier=RevocationCheckingVerifier(
            verifier
            or JwksVerifier(settings.jwks_url, issuer=settings.jwt_issuer, audience=settings.jwt_audience),
            revoked,
        ),
        upstreams=upstreams,
        hub=hub,
    )
    ctx.outbox = Outbox(runtime.db[Outbox.COLLECTION], runtime.publisher, on_park=_park_hook(ctx))
    ctx.jobs = _generation_deps(settings, upstreams, ctx, runtime)
    ctx.comparisons = MongoComparisons(runtime.db[COMPARISONS])
    stream.register(runtime, hub)
    usage_events.register(runtime, lambda: ctx.jobs, group_id=f"{settings.consumer_group}-usage")
    account_events.register(
        runtime,
        revoked,
        runtime.db[Outbox.COLLECTION],
        group_id=f"{settings.consumer_group}-accounts",
        comparisons=runtime.db[COMPARISONS],
    )
    _outbox_tasks(runtime, ctx.outbox, settings)
    runtime.add_background(
        "revoked-users", lambda stop: revoked.run(stop, interval=settings.revoked_users_refresh_seconds)
    )
    runtime.add_closer(upstreams.aclose)

    checks: dict[str, Any] = dict(runtime.checks())  # ready on its own Mongo; Kafka reported, not required
    for name in SERVICES:
        checks[name] = Reported(_service_check(upstreams, name))  # not required: its routes answer 503 alone
    app = create_http_app(
        service=settings.service_name,
        title="LLM Template System API",
        description=DESCRIPTION,
        lifespan=runtime.lifespan,
        checks=checks,
        max_body_bytes=settings.max_body_bytes,
        max_json_depth=settings.max_json_depth,
        streamed_bodies={"POST /datasets": settings.dataset_max_bytes},
        generate_unique_id_function=_operation_id,
        docs_url=None,  # served self-hosted by entrypoints.security (no CDN)
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.state.runtime = runtime
    mount_routes(app)
    openapi.install(app)
    security.install(app, hsts_max_age=settings.hsts_max_age_seconds)
    return app, ctx, runtime


def _outbox_tasks(runtime: ServiceRuntime, outbox: Outbox | None, settings: GatewaySettings) -> None:
    """The command outbox's relay (parked commands replayed first) and its purge of published entries."""
    assert outbox is not None

    async def relay(stop: Any) -> None:
        with contextlib.suppress(Exception):  # the hook logs its own failures; Mongo down: next start
            await outbox.replay_parked()
        await run_relay([outbox], interval=settings.outbox_relay_interval_seconds, stop=stop)

    async def purge(stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):
                await outbox.purge_published(timedelta(hours=settings.outbox_retention_hours))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=600)

    runtime.add_background("outbox-relay", relay)
    runtime.add_background("outbox-purge", purge)


def _replica_settings(settings: GatewaySettings) -> GatewaySettings:
    """One Kafka client id per replica (``gateway-<INSTANCE_ID>``) in the broker's logs and quotas."""
    if settings.kafka_client_id is None and settings.instance_id:
        return settings.model_copy(update={"kafka_client_id": f"gateway-{settings.instance_id}"})
    return settings


def _upstreams(settings: GatewaySettings) -> Upstreams:
    return Upstreams(
        {
            "auth": settings.auth_url,
            "catalog": settings.catalog_url,
            "templates": settings.templates_url,
            "generator": settings.generator_url,
            "exporter": settings.exporter_url,
        },
        timeout=settings.upstream_timeout_seconds,
    )


def _park_hook(ctx: GatewayContext) -> Callable[[StoredMessage], Awaitable[None]]:
    """A parked generation command can never run: release what its admission reserved."""

    async def parked(stored: StoredMessage) -> None:
        if ctx.jobs is not None and stored.envelope.type == GenerationRequested.TYPE:
            await handlers.release_undeliverable(
                GenerationRequested.from_envelope(stored.envelope), deps=ctx.jobs
            )

    return parked


def _generation_deps(
    settings: GatewaySettings, upstreams: Upstreams, ctx: GatewayContext, runtime: ServiceRuntime
) -> Deps:
    """The ports of the generation use cases (handlers.Deps), quotas included."""
    return Deps(
        templates=TemplatesHttp(upstreams),
        catalog=CatalogHttp(upstreams),
        generator=GeneratorHttp(upstreams),
        commands=OutboxCommands(ctx.outbox, topic=settings.generation_commands_topic),
        events=ctx.hub,
        max_count=settings.max_generation_count,
        usage=MongoUsageLedger(runtime.db[USAGE_COLLECTION]),
        quota=default_limits(settings),
        max_command_bytes=settings.max_command_bytes,
    )


def default_limits(settings: GatewaySettings) -> Limits:
    """Every user's quota unless an admin overrides it."""
    return Limits(
        max_items_per_job=settings.quota_max_items_per_job,
        max_active_jobs=settings.quota_max_active_jobs,
        max_items_per_day=settings.quota_max_items_per_day,
        budget_usd=settings.quota_budget_usd,
        budget_period=settings.quota_budget_period,
    )


def _service_check(upstreams: Upstreams, name: str) -> Any:
    """A service behind the gateway, for the operator's eye: a service away makes only its own routes answer 503
    (``service_unavailable``), so it never takes the gateway (login, reads of the others) out of service."""

    async def check() -> dict[str, Any]:
        return await upstreams.ready(name)

    return check


def create_app() -> FastAPI:
    """Factory for ``uvicorn --factory``."""
    return bootstrap()[0]
