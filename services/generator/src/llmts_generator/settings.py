"""Settings of the generator service (env vars; built in bootstrap, never at import)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field

from llmts_common.settings import BaseServiceSettings


class GeneratorSettings(BaseServiceSettings):
    service_name: str = "generator"
    http_port: int = Field(
        default=8004, ge=0, le=65535, validation_alias=AliasChoices("GENERATOR_PORT", "HTTP_PORT")
    )

    kafka_group_id: str = Field(
        default="llmts-generator", description="Consumer group of generation.commands."
    )
    commands_topic: str = Field(
        default="generation.commands",
        description="Topic of GenerationRequested/GenerationCancelRequested (override only to isolate tests).",
    )
    commands_offset_reset: Literal["earliest", "latest"] = Field(
        default="earliest", description="Where a NEW consumer group starts on the commands topic."
    )
    instance_id: str = Field(default="", description="Names this process in leases; default host:pid.")
    templates_url: str = Field(
        default="http://127.0.0.1:8003",
        description="The templates service, which holds the seed datasets: jobs read their rows through its "
        "internal route (X-Internal-Token = INTERNAL_TOKEN). Empty: no datasets (a job with a seed fails).",
    )
    templates_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Timeout of one read of seed dataset rows from the templates service."
    )

    # jobs and leases
    max_jobs: int = Field(
        default=32,
        ge=1,
        description="Jobs this process runs at the same time (all users; queued jobs start user by user in "
        "round robin, not first-come-first-served).",
    )
    max_jobs_per_user: int = Field(
        default=8,
        ge=1,
        description="Jobs of one user this process runs at the same time; the user's other jobs stay queued, so "
        "another user's job starts at once. Provider calls are shared fairly between users whatever this is.",
    )
    lease_ttl_seconds: float = Field(default=15.0, gt=0, description="A job whose lease is older is resumed.")
    lease_renew_seconds: float = Field(
        default=1.0, gt=0, description="Lease renewal (and cross-process cancel poll) period."
    )
    sweep_interval_seconds: float = Field(
        default=2.0, gt=0, description="How often expired leases are looked for."
    )
    backlog_metrics_interval_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How often the global backlog gauges (llmts_generator_jobs_queued, _jobs_running, "
        "_items_pending: what KEDA scales on) are re-read from the jobs collection.",
    )
    cancel_grace_seconds: float = Field(default=1.0, ge=0, description="Wait for in-flight writes on cancel.")
    cancel_drain_seconds: float = Field(
        default=30.0,
        ge=0,
        description="On a cancel (or a fatal error) wait this long for the calls already at the provider: it bills "
        "them, so their attempts are recorded and charged; calls still out after it are abandoned. 0: abandon at once.",
    )

    # provider calls
    provider_concurrency: str = Field(
        default="openrouter=64,ollama=4,openai-compatible=32",
        description="Most calls at once per provider (names: openrouter, ollama, openai-compatible), shared fairly "
        "by all jobs of the process: the ceiling of the adaptive limit (the limit itself when "
        "PROVIDER_ADAPTIVE_CONCURRENCY is false).",
    )
    provider_concurrency_default: int = Field(
        default=32, ge=1, description="Ceiling of a provider not listed."
    )
    provider_adaptive_concurrency: bool = Field(
        default=True,
        description="Learn each provider's capacity below the ceiling (AIMD on 429, 503/529, timeouts and "
        "time-to-first-token queueing; Retry-After pauses new calls). False: the ceiling is a fixed limit.",
    )
    provider_concurrency_initial: str = Field(
        default="openrouter=16,ollama=1",
        description="Adaptive limit at start per provider (never above the ceiling); it then doubles per round "
        "trip until the first overload signal.",
    )
    provider_concurrency_initial_default: int = Field(
        default=1, ge=1, description="Start of a provider not listed."
    )
    provider_concurrency_backoff: float = Field(
        default=0.9,
        gt=0,
        lt=1,
        description="Multiplicative decrease of the adaptive limit on an overload signal.",
    )
    provider_queue_ratio: float = Field(
        default=2.0,
        ge=1,
        description="A streamed call has queued when its time to first token exceeds this × the lowest recent one "
        "+ PROVIDER_QUEUE_SLACK_SECONDS.",
    )
    provider_queue_slack_seconds: float = Field(
        default=0.5,
        ge=0,
        description="Added to that threshold: a variation of time to first token this small (prompt length, "
        "load) never counts as queueing.",
    )
    provider_probe_rounds: float = Field(
        default=4.0,
        gt=0,
        description="Round trips at the limit before trying again a level that overloaded (doubled after each "
        "probe that fails again, up to 64).",
    )
    loop_lag_target_ms: float = Field(
        default=10.0,
        ge=0,
        description="Event-loop lag (p90 of the last second) above which the process keeps fewer provider calls "
        "in flight, all providers together (AIMD; calls are still granted fairly between users): one user's "
        "backlog against a fast endpoint must not keep the loop — every other user's job — waiting. 0: no such "
        "cap.",
    )
    loop_lag_min_calls: int = Field(
        default=8,
        ge=1,
        description="The process-wide cap never goes below this many calls in flight (LOOP_LAG_TARGET_MS).",
    )
    stream_providers: str = Field(
        default="ollama,openai-compatible",
        description="Providers whose calls are streamed (comma list): their first-token and idle deadlines apply "
        "and their time to first token drives the adaptive limit (a local server such as Ollama, vLLM or "
        "llama.cpp queues calls instead of refusing them). The others are sent non-streamed (less CPU per call) "
        "with PROVIDER_TIMEOUT_SECONDS as a total deadline.",
    )
    retry_base_seconds: float = Field(default=0.5, ge=0)
    retry_cap_seconds: float = Field(default=30.0, ge=0)
    max_provider_retries: int = Field(default=6, ge=0, description="Retries of one call on 429/5xx/timeouts.")
    max_retry_after_seconds: float = Field(default=120.0, ge=0)

    # caps
    attempt_budget_factor: float = Field(
        default=1.5,
        gt=0,
        description="Item attempts per job = ceil(N × max_attempts_per_item × factor): room to regenerate "
        "rejected items even when max_attempts_per_item is 1.",
    )
    breaker_window: int = Field(default=40, ge=1)
    breaker_min_calls: int = Field(default=20, ge=1)
    breaker_threshold: float = Field(default=0.9, gt=0, le=1)

    progress_interval_seconds: float = Field(default=0.25, ge=0.25, description="≥ 0.25 s: at most 4/s.")

    # response cache (collection response_cache, per user; a job's `cache` field: use | refresh | off)
    response_cache_ttl_seconds: float = Field(
        default=30 * 24 * 3600.0,
        gt=0,
        description="How long a cached provider answer is served (then purged): 30 days by default.",
    )
    response_cache_max_entries_per_user: int = Field(
        default=200_000,
        ge=1,
        description="Cached answers kept per user; the purge deletes a user's oldest entries beyond it.",
    )
    response_cache_purge_interval_seconds: float = Field(
        default=600.0, gt=0, description="How often expired and surplus cache entries are deleted."
    )

    # batch-mode jobs (mode: batch): batchjob.py, domain/batching.py
    batch_poll_initial_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Batch jobs: first wait between two looks at the provider's batches; it grows (×1.5) while "
        "nothing changes and starts again when lines progressed.",
    )
    batch_poll_max_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Batch jobs: longest wait between two looks at the provider's batches.",
    )
    batch_cancel_wait_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Batch jobs: how long a cancelled (or stopped) job waits for the provider to end its batches, "
        "to store the lines they answered (paid for) before it ends.",
    )
    batch_max_lines: int = Field(
        default=50_000,
        ge=1,
        description="Batch jobs: most lines in one provider batch (OpenAI's limit is 50,000); more lines go into "
        "several batches, each read as soon as it ends.",
    )

    render_workers: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Prompt renders run at once (worker processes, or threads with RENDER_ISOLATION=thread); "
        "rendering never runs on the event loop.",
    )
    render_isolation: Literal["process", "thread"] = Field(
        default="process",
        description="process: a render past its deadline is killed with its worker process (hard deadline, the "
        "event loop never waits for template code); thread: cooperative deadline only (see libs/templating).",
    )

    # cost reconciliation (OpenRouter GET /generation?id=): reconciler.py, domain/costs.py
    reconcile_enabled: bool = Field(
        default=True,
        description="Look attempts up in the provider's own books (OpenRouter): every attempt whose usage was "
        "missing or cut or that read the prompt cache, and a sample of the rest; reported vs reconciled cost in "
        "GET /history/{id}.",
    )
    reconcile_sample_rate: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="Share of the other OpenRouter attempts looked up as well (deterministic per attempt id).",
    )
    reconcile_delay_seconds: float = Field(
        default=10.0,
        ge=0,
        description="Earliest lookup after a call (OpenRouter's generation stats lag a few seconds); a record not "
        "there yet is asked again after twice as long, each try.",
    )
    reconcile_interval_seconds: float = Field(
        default=10.0, gt=0, description="How often the reconciler looks for attempts to look up."
    )
    reconcile_per_second: float = Field(
        default=5.0, gt=0, description="Most generation lookups a second (all jobs of this process)."
    )
    reconcile_max_tries: int = Field(
        default=6, ge=1, description="Lookups of one attempt before its reported cost is kept as final."
    )

    def provider_limits(self) -> dict[str, int]:
        """The ceiling per provider (``PROVIDER_CONCURRENCY``)."""
        return _limits(self.provider_concurrency)

    def provider_initial_limits(self) -> dict[str, int]:
        """The adaptive limit at start per provider (``PROVIDER_CONCURRENCY_INITIAL``)."""
        return _limits(self.provider_concurrency_initial)

    def streamed_providers(self) -> frozenset[str]:
        return frozenset(p.strip().lower() for p in self.stream_providers.split(",") if p.strip())


def _limits(spec: str) -> dict[str, int]:
    """``name=n,name=n`` → ``{name: n}`` (n ≥ 1; malformed parts are ignored)."""
    limits: dict[str, int] = {}
    for part in spec.split(","):
        name, _, value = part.partition("=")
        if name.strip() and value.strip().isdigit():
            limits[name.strip().lower()] = max(1, int(value.strip()))
    return limits
