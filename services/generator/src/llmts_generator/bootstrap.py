"""Composition root of the generator: builds every adapter (or takes the fakes a test passes) and the app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import APIRouter, FastAPI

from llmts_common.auth import JwksVerifier
from llmts_common.runtime import ServiceRuntime
from llmts_common.web import create_app as create_http_app
from llmts_generator.adapters import metrics
from llmts_generator.adapters.cache import MongoResponseCache
from llmts_generator.adapters.datasets import DatasetRows
from llmts_generator.adapters.erasure import MongoUserErasure
from llmts_generator.adapters.events import KafkaEventSink
from llmts_generator.adapters.reconciliations import MongoReconciliations
from llmts_generator.adapters.repository import MongoGenerationRepository
from llmts_generator.batchjob import BatchConfig
from llmts_generator.domain.backoff import BackoffPolicy
from llmts_generator.domain.concurrency import AdaptiveConfig, AdaptiveLimit
from llmts_generator.domain.limiter import FairLimiter
from llmts_generator.domain.loadguard import GuardConfig, LoadGuard
from llmts_generator.domain.ports import EventSink
from llmts_generator.entrypoints import account_events, http, stream
from llmts_generator.manager import JobManager, default_owner
from llmts_generator.reconciler import CostReconciler, ReconcileConfig, books_from
from llmts_generator.runner import RunnerConfig, RunnerDeps
from llmts_generator.settings import GeneratorSettings
from llmts_providers import ProviderFactory, ProviderSettings
from llmts_templating.pool import RenderPool

GUARD_INTERVAL_S = 1.0
"""How often the process-wide cap of the load guard is re-decided (the loop-lag window is one second)."""

DESCRIPTION = """Runs generation jobs (exactly N validated items) from `generation.commands`; publishes
`generation.events`. Reads are owner-only through the verified bearer token."""


@dataclass
class Generator:
    """Handles a test may want: the runtime, the repository, the job manager."""

    runtime: ServiceRuntime
    repo: MongoGenerationRepository
    manager: JobManager
    providers: ProviderFactory
    settings: GeneratorSettings


def runner_config(settings: GeneratorSettings) -> RunnerConfig:
    return RunnerConfig(
        lease_ttl=timedelta(seconds=settings.lease_ttl_seconds),
        lease_renew_s=settings.lease_renew_seconds,
        backoff=BackoffPolicy(
            base_s=settings.retry_base_seconds,
            cap_s=settings.retry_cap_seconds,
            max_retries=settings.max_provider_retries,
            max_retry_after_s=settings.max_retry_after_seconds,
        ),
        attempt_budget_factor=settings.attempt_budget_factor,
        breaker_window=settings.breaker_window,
        breaker_min_calls=settings.breaker_min_calls,
        breaker_threshold=settings.breaker_threshold,
        progress_interval_s=settings.progress_interval_seconds,
        cancel_grace_s=settings.cancel_grace_seconds,
        cancel_drain_s=settings.cancel_drain_seconds,
        stream_providers=settings.streamed_providers(),
    )


def limiters(settings: GeneratorSettings, guard: LoadGuard | None = None) -> Callable[[str], FairLimiter]:
    """One global fair limiter per provider (one endpoint: a provider has one base URL), shared by every job of
    the process; its capacity is learned below the configured ceiling unless PROVIDER_ADAPTIVE_CONCURRENCY=false,
    and all of them heed ``guard`` (the process-wide cap while the event loop lags)."""
    ceilings = settings.provider_limits()
    initials = settings.provider_initial_limits()
    made: dict[str, FairLimiter] = {}

    def limiter_for(name: str) -> FairLimiter:
        limiter = made.get(name)
        if limiter is None:
            ceiling = ceilings.get(name, settings.provider_concurrency_default)
            controller = None
            if settings.provider_adaptive_concurrency:
                controller = AdaptiveLimit(
                    AdaptiveConfig(
                        ceiling=ceiling,
                        initial=initials.get(name, settings.provider_concurrency_initial_default),
                        backoff=settings.provider_concurrency_backoff,
                        queue_ratio=settings.provider_queue_ratio,
                        queue_slack_s=settings.provider_queue_slack_seconds,
                        probe_rounds=settings.provider_probe_rounds,
                        max_pause_s=settings.max_retry_after_seconds,
                    )
                )
            limiter = made[name] = FairLimiter(ceiling, name=name, controller=controller, guard=guard)
        return limiter

    return limiter_for


def render_pool(settings: GeneratorSettings, runtime: ServiceRuntime) -> RenderPool:
    """Prompt rendering off the event loop with a hard deadline (libs/templating ``RenderPool``): its worker
    processes start with the runtime (or at the first render) and stop after the background tasks."""
    pool = RenderPool(workers=settings.render_workers, isolation=settings.render_isolation)

    async def start(_stopping: asyncio.Event) -> None:
        pool.start()

    runtime.add_background("render-workers", start)
    runtime.add_closer(pool.aclose)
    return pool


def response_cache(
    settings: GeneratorSettings, runtime: ServiceRuntime, clock: Callable[[], datetime]
) -> MongoResponseCache:
    """The per-user response cache (collection ``response_cache``): its flusher and its purge run as background
    tasks of the runtime."""
    cache = MongoResponseCache(
        runtime.db,
        ttl=timedelta(seconds=settings.response_cache_ttl_seconds),
        max_entries_per_user=settings.response_cache_max_entries_per_user,
        clock=clock,
    )
    runtime.add_background("response-cache-flush", cache.run_flusher)

    async def purge(stopping: asyncio.Event) -> None:
        await cache.run_purger(stopping, settings.response_cache_purge_interval_seconds)

    runtime.add_background("response-cache-purge", purge)
    return cache


def load_guard(settings: GeneratorSettings, runtime: ServiceRuntime) -> LoadGuard | None:
    """The process-wide cap on provider calls while the event loop lags (``LOOP_LAG_TARGET_MS``; None when 0),
    re-decided every second from the runtime's loop-lag samples by a background task."""
    if settings.loop_lag_target_ms <= 0:
        return None
    ceiling = sum(settings.provider_limits().values()) or settings.provider_concurrency_default
    guard = LoadGuard(
        GuardConfig(
            target_s=settings.loop_lag_target_ms / 1000.0,
            floor=min(settings.loop_lag_min_calls, max(1, ceiling)),
            ceiling=max(ceiling, settings.loop_lag_min_calls),
        )
    )

    async def steer(stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), GUARD_INTERVAL_S)
            if guard.update(runtime.loop_lag.recent_p90()):
                guard.notify()
            metrics.LOAD_GUARD_CAP.set(-1 if math.isinf(guard.cap) else guard.cap)

    runtime.add_background("load-guard", steer)
    return guard


def runner_deps(
    settings: GeneratorSettings,
    repo: MongoGenerationRepository,
    sink: EventSink,
    providers: ProviderFactory,
    renderer: RenderPool,
    now: Callable[[], datetime],
    cache: MongoResponseCache,
    guard: LoadGuard | None = None,
) -> RunnerDeps:
    owner = default_owner(settings.instance_id)
    limiter_for = limiters(settings, guard)
    config = runner_config(settings)
    return RunnerDeps(repo, sink, providers.for_model, limiter_for, renderer, config, owner, now, cache)


def job_manager(settings: GeneratorSettings, deps: RunnerDeps) -> JobManager:
    """The jobs of this process (``MAX_JOBS``, ``MAX_JOBS_PER_USER``: fair admission between users)."""
    return JobManager(
        deps,
        max_jobs=settings.max_jobs,
        sweep_interval_s=settings.sweep_interval_seconds,
        max_jobs_per_user=settings.max_jobs_per_user,
        batch=BatchConfig.of(settings),
    )


def bootstrap(
    settings: GeneratorSettings | None = None,
    *,
    provider_factory: ProviderFactory | None = None,
    verifier: JwksVerifier | None = None,
    events: EventSink | None = None,
    clock: Callable[[], datetime] | None = None,
    configure_process: bool = True,
) -> tuple[FastAPI, Generator]:
    """The generator service: its app (HTTP routes, the command consumer, the job manager in the lifespan) and
    the parts tests reach into (runtime, repository, manager, providers, settings)."""
    settings = settings or GeneratorSettings()
    runtime = ServiceRuntime(
        settings,
        indexes=MongoGenerationRepository.indexes()
        + MongoResponseCache.indexes()
        + MongoReconciliations.indexes(),
        configure_process=configure_process,
    )
    if configure_process:  # one INFO line per provider call is noise (and CPU) at thousands of calls per job
        for name in ("httpx", "openai"):
            logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
    assert runtime.broker is not None
    assert runtime.publisher is not None
    repo = MongoGenerationRepository(runtime.db)
    providers = provider_factory or ProviderFactory(ProviderSettings())
    sink = events or KafkaEventSink(runtime.publisher, runtime.broker)
    now: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
    renderer = render_pool(settings, runtime)
    cache = response_cache(settings, runtime, now)
    deps = runner_deps(settings, repo, sink, providers, renderer, now, cache, load_guard(settings, runtime))
    deps.datasets = seed_rows(settings, runtime)  # the jobs' and the preview's seed rows
    manager = job_manager(settings, deps)
    stream.register(
        runtime,
        repo=repo,
        manager=manager,
        clock=now,
        group_id=settings.kafka_group_id,
        topic=settings.commands_topic,
        offset_reset=settings.commands_offset_reset,
    )
    account_events.register(
        runtime,
        erasure=MongoUserErasure(runtime.db, cache),
        repo=repo,
        manager=manager,
        clock=now,
        group_id=f"{settings.kafka_group_id}-accounts",
    )
    runtime.add_background("jobs", manager.run)
    _maintenance(runtime, settings, repo, providers, now)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime.lifespan(app):
            try:
                yield
            finally:
                await manager.shutdown()

    runtime.add_closer(providers.aclose)

    app = create_http_app(
        service=settings.service_name,
        title="LLM Template System — generator",
        description=DESCRIPTION,
        lifespan=lifespan,
        checks=dict(runtime.checks()),
        max_body_bytes=settings.max_body_bytes,
        max_json_depth=settings.max_json_depth,
    )
    verifier = verifier or JwksVerifier(
        settings.jwks_url, issuer=settings.jwt_issuer, audience=settings.jwt_audience
    )
    http.mount(app, _router(settings, repo, manager, verifier, providers, renderer))
    generator = Generator(runtime, repo, manager, providers, settings)
    app.state.runtime = runtime
    app.state.generator = generator
    return app, generator


def _maintenance(
    runtime: ServiceRuntime,
    settings: GeneratorSettings,
    repo: MongoGenerationRepository,
    providers: ProviderFactory,
    clock: Callable[[], datetime],
) -> None:
    """The background tasks besides the jobs: the backlog gauges and the cost reconciler."""
    _backlog_metrics(runtime, repo, clock, settings.backlog_metrics_interval_seconds)
    _cost_reconciler(runtime, settings, providers, clock)


def _cost_reconciler(
    runtime: ServiceRuntime,
    settings: GeneratorSettings,
    providers: ProviderFactory,
    clock: Callable[[], datetime],
) -> None:
    """The background lookup of attempts in the provider's books (reconciler.py), unless RECONCILE_ENABLED=false."""
    if not settings.reconcile_enabled:
        return
    reconciler = CostReconciler(
        MongoReconciliations(runtime.db), books_from(providers), reconcile_config(settings), clock
    )
    runtime.add_background("cost-reconciler", reconciler.run)


def reconcile_config(settings: GeneratorSettings) -> ReconcileConfig:
    return ReconcileConfig(
        sample_rate=settings.reconcile_sample_rate,
        delay_s=settings.reconcile_delay_seconds,
        interval_s=settings.reconcile_interval_seconds,
        per_second=settings.reconcile_per_second,
        max_tries=settings.reconcile_max_tries,
    )


def seed_rows(settings: GeneratorSettings, runtime: ServiceRuntime) -> DatasetRows | None:
    """Seed dataset rows read from the templates service (TEMPLATES_URL; None when it is blank)."""
    if not settings.templates_url:
        return None
    client = httpx.AsyncClient(base_url=settings.templates_url, timeout=settings.templates_timeout_seconds)
    runtime.add_closer(client.aclose)
    return DatasetRows(client, settings.internal_token_value)


def _backlog_metrics(
    runtime: ServiceRuntime,
    repo: MongoGenerationRepository,
    clock: Callable[[], datetime],
    interval_s: float,
) -> None:
    """The global backlog gauges KEDA scales on, re-read from the jobs collection (adapters/metrics.py)."""
    runtime.add_background(
        "backlog-metrics",
        lambda stop: metrics.refresh_backlog(repo.backlog, clock, interval_s=interval_s, stop=stop),
    )


def _router(
    settings: GeneratorSettings,
    repo: MongoGenerationRepository,
    manager: JobManager,
    verifier: JwksVerifier,
    providers: ProviderFactory,
    renderer: RenderPool,
) -> APIRouter:
    return http.build_router(
        repo=repo,
        manager=manager,
        verifier=verifier,
        resolve_provider=providers.for_model,
        renderer=renderer,
        internal_token=settings.internal_token_value,
        reconcile_threshold=reconcile_config(settings).threshold,
    )


def create_app() -> FastAPI:
    """Factory for ``uvicorn --factory``."""
    return bootstrap()[0]
