"""Prometheus metrics of the generator, counted from what the job writer made durable (so a retried or resumed
batch is never counted twice by this process).

The backlog gauges (``llmts_generator_jobs_queued``, ``_jobs_running``, ``_items_pending``) are global: every
replica reads the same counts from the jobs collection every ``BACKLOG_METRICS_INTERVAL_SECONDS``, so an
autoscaler takes ``max()`` over the replicas (a ``sum()`` would count the backlog once per replica). Read from
Mongo, not from Kafka lag: a command is committed as soon as its job is stored as queued, so the lag stays ~0
while jobs wait. ``llmts_generator_job_duration_seconds`` is observed by the replica that ends a job, from its
acceptance (``queued_at``) to its terminal state: the wait in the queue included, as the user sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

ITEMS = Counter("llmts_generator_items_total", "Items stored", ["outcome"])  # accepted | rejected
ATTEMPTS = Counter("llmts_generator_attempts_total", "Provider calls recorded", ["provider", "outcome"])
TOKENS = Counter("llmts_generator_tokens_total", "Tokens billed", ["provider", "kind"])  # prompt | completion
COST = Counter("llmts_generator_cost_usd_total", "Cost billed in USD", ["provider"])
PROVIDER_ERRORS = Counter(
    "llmts_generator_provider_errors_total", "Provider errors by type", ["provider", "type"]
)
LOAD_GUARD_CAP = Gauge(
    "llmts_generator_load_guard_calls",
    "Process-wide cap on provider calls in flight while the event loop lags (LOOP_LAG_TARGET_MS); -1: no cap",
)
JOBS_QUEUED = Gauge(
    "llmts_generator_jobs_queued",
    "Unsettled jobs no generator holds a live lease on (waiting to start or to be resumed); global, the same "
    "on every replica",
)
JOBS_RUNNING = Gauge(
    "llmts_generator_jobs_running", "Unsettled jobs a generator holds a live lease on; global"
)
ITEMS_PENDING = Gauge(
    "llmts_generator_items_pending", "Items the unsettled jobs still owe (requested - succeeded); global"
)
FALLBACKS = Counter(
    "llmts_generator_fallbacks_total",
    "A job left a model for the next one of its fallback chain, by the left model's provider and the reason "
    "(breaker_open: most of the recent item attempts failed)",
    ["provider", "reason"],
)
JOB_DURATION = Histogram(
    "llmts_generator_job_duration_seconds",
    "From a job's acceptance to its terminal state, by terminal status (observed by the replica that ends it)",
    ["status"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400),
)

log = logging.getLogger("llmts.generator.metrics")

Backlog = Callable[[datetime], Awaitable[Mapping[str, int]]]


def set_backlog(backlog: Mapping[str, int]) -> None:
    queued = int(backlog.get("queued", 0))
    JOBS_QUEUED.set(queued)
    JOBS_RUNNING.set(max(0, int(backlog.get("jobs", 0)) - queued))
    ITEMS_PENDING.set(int(backlog.get("items_pending", 0)))


async def refresh_backlog(
    read: Backlog, clock: Callable[[], datetime], *, interval_s: float, stop: asyncio.Event
) -> None:
    """Refresh the backlog gauges every ``interval_s`` until ``stop`` (the last value stays while Mongo is away)."""
    while not stop.is_set():
        try:
            set_backlog(await read(clock()))
        except Exception as exc:
            log.warning("backlog metrics not refreshed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)


def record_job_end(status: str, accepted_at: datetime | None, now: datetime) -> None:
    if accepted_at is None:
        return
    if accepted_at.tzinfo is None and now.tzinfo is not None:  # Mongo hands back naive UTC
        accepted_at = accepted_at.replace(tzinfo=now.tzinfo)
    JOB_DURATION.labels(status).observe(max(0.0, (now - accepted_at).total_seconds()))


def record_batch(attempts: Iterable[Mapping[str, Any]], items: Iterable[Mapping[str, Any]]) -> None:
    for a in attempts:
        provider = str(a.get("provider") or "unknown")
        ATTEMPTS.labels(provider, str(a.get("outcome") or "unknown")).inc()
        TOKENS.labels(provider, "prompt").inc(int(a.get("prompt_tokens") or 0))
        TOKENS.labels(provider, "completion").inc(int(a.get("completion_tokens") or 0))
        COST.labels(provider).inc(float(a.get("cost_usd") or 0.0))
        error = a.get("error")
        if isinstance(error, Mapping):
            PROVIDER_ERRORS.labels(provider, str(error.get("code") or error.get("type") or "error")).inc()
    for item in items:
        ITEMS.labels(str(item.get("status") or "unknown")).inc()
