"""Runs one generation job while this process holds its lease.

Pieces (one set per running job):

- **slots** (``_slot``): render → call the provider (fair global limiter, retries with backoff) → parse →
  validate → accept / repair / reject. Every decision that must be atomic (dedup, ``unique`` rules, reserving the
  next dense index, the scheduler's counters) happens synchronously, between two awaits, so concurrent slots of
  the same job never race. A slot does not wait for its writes to be durable (only for backpressure).
- **writer** (``JobWriter``): a group commit. Slots enqueue operations; the writer folds everything queued into
  one batch and writes batches strictly in order: fenced job update (lease check, live counters, job-level
  outbox) → ``attempts`` → ``items`` (ordered; the insert reserves the index). What is durable is therefore
  always a prefix of what was decided.
- **flusher** (``JobFlusher``): publishes each durable batch's events in order, pulls the job-level outbox
  entries, advances the publication watermarks, and emits throttled progress.
- **renewer**: extends the lease every ``lease_renew_seconds`` and notices a cancel requested through another
  process.

A *transient* storage failure (MongoDB away: connection lost, server restarting) is ridden out, not turned into
an abort: the writer keeps the batch in hand and everything submitted meanwhile, no new provider call starts
(``JobWriter.storage_ok``; calls in flight finish and their attempts queue up), and the batch is sent again with
backoff (idempotently: numbered job update ``write_seq``, attempts keyed by id, own items skipped) for at most
``RunnerConfig.storage_outage_s``. If the job was taken over meanwhile (the outage outlasted the lease) or the
outage lasts longer, the attempts held are stored as orphans (billing) before the writer fails.

Any other storage failure or a lost lease aborts the runner without a terminal write ("crash-only"): the next
owner resumes from what is durable (``_recover``): totals from ``attempts``, next indexes and dedup state from
``items``, and everything above the watermarks published again with its stored envelope id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from llmts_common.contracts import (
    GenerationCancelled,
    GenerationCompleted,
    GenerationFailed,
    GenerationProgress,
    GenerationRequested,
    GenerationStarted,
    ItemGenerated,
    ItemRejected,
    Message,
    Usage,
)
from llmts_common.envelope import Envelope
from llmts_common.outbox import outbox_entry
from llmts_generator.adapters.events import EventSink
from llmts_generator.adapters.metrics import record_batch
from llmts_generator.adapters.repository import (
    GenerationRepository,
    LeaseLost,
    attempt_id,
    is_transient,
    item_id,
    rejected_item_id,
)
from llmts_generator.domain import state
from llmts_generator.domain.backoff import BackoffPolicy
from llmts_generator.domain.breaker import CircuitBreaker
from llmts_generator.domain.limiter import FairLimiter
from llmts_generator.domain.progress import ProgressThrottle, RateEstimator, eta_seconds, projected_cost
from llmts_generator.domain.repair import error_summary, first_messages, repair_messages
from llmts_generator.domain.scheduling import Scheduler, SlotPlan, attempt_budget
from llmts_generator.domain.schema import is_strict_compatible
from llmts_generator.domain.tasks import expand_tasks, task_for_target
from llmts_providers import (
    AuthFailed,
    BadRequest,
    ChatMessage,
    ChatRequest,
    ChatResult,
    ContextTooLong,
    InsufficientCredits,
    ModelNotFound,
    Provider,
    ProviderError,
)
from llmts_templating import PromptRenderer, RenderError, build_context
from llmts_templating.parse import parse_output
from llmts_templating.validation import (
    CompiledRules,
    UniqueState,
    compile_rules,
    compile_schema,
    content_hash,
    validate_item,
)

log = logging.getLogger("llmts.generator.runner")

MAX_LAST_OUTPUT_CHARS = 8000

ProviderResolver = Callable[[str, str | None], Awaitable[tuple[Provider, str]]]


@dataclass(frozen=True)
class RunnerConfig:
    lease_ttl: timedelta = timedelta(seconds=15)
    lease_renew_s: float = 1.0
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    attempt_budget_factor: float = 1.5
    breaker_window: int = 40
    breaker_min_calls: int = 20
    breaker_threshold: float = 0.9
    progress_interval_s: float = 0.25
    cancel_grace_s: float = 1.0
    # how long a running job waits for MongoDB to come back (holding what it decided) before it aborts
    storage_outage_s: float = 120.0


@dataclass
class RunnerDeps:
    repo: GenerationRepository
    events: EventSink
    resolve_provider: ProviderResolver
    limiter_for: Callable[[str], FairLimiter]
    renderer: PromptRenderer
    config: RunnerConfig
    owner: str
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


class JobAborted(Exception):
    """The runner gave up without a terminal state (lease lost, storage failure, shutdown)."""


def fatal_code(exc: ProviderError) -> str | None:
    """The failure code when a provider error makes the whole job pointless, else None."""
    if isinstance(exc, InsufficientCredits):
        return "insufficient_credits"
    if isinstance(exc, AuthFailed):
        return "provider_auth_failed"
    if isinstance(exc, ModelNotFound):
        return "model_not_found"
    if isinstance(exc, ContextTooLong):
        return "context_too_long"
    if isinstance(exc, BadRequest):
        return "provider_bad_request"
    if not exc.retryable:
        return exc.code or "provider_error"
    return None


def fatal_reason(code: str, exc: ProviderError) -> str:
    prefix = {
        "insufficient_credits": "the provider account has insufficient credits (HTTP 402); add credits and retry",
        "provider_auth_failed": "the provider rejected the API key",
        "model_not_found": "the provider does not know this model",
        "context_too_long": "the prompt exceeds the model's context length",
        "provider_bad_request": "the provider rejected the request",
    }.get(code, "the provider failed")
    return f"{prefix}: {exc.message}"[:1000]


# --------------------------------------------------------------------------------------------------------
# group-commit writer

Publishable = tuple[Envelope, str, str | None]  # (envelope, topic, id of the job-outbox entry or None)


@dataclass
class Op:
    inc: dict[str, float] = field(default_factory=dict)
    set: dict[str, Any] = field(default_factory=dict)
    max: dict[str, int] = field(default_factory=dict)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    item_events: list[tuple[Envelope, str]] = field(default_factory=list)
    job_outbox: list[tuple[dict[str, Any], Envelope]] = field(default_factory=list)


@dataclass
class Batch:
    items: list[dict[str, Any]]
    attempts: list[dict[str, Any]]
    publish: list[Publishable]


def merge_ops(ops: Sequence[Op]) -> tuple[dict[str, Any], Batch]:
    """Fold queued operations into one job update (``$inc`` summed, ``$max`` maxed, outbox ``$push $each``)
    plus the documents to insert and the events to publish, in submission order."""
    inc: dict[str, float] = {}
    sets: dict[str, Any] = {}
    maxes: dict[str, int] = {}
    outbox: list[dict[str, Any]] = []
    batch = Batch([], [], [])
    for op in ops:
        for k, v in op.inc.items():
            inc[k] = inc.get(k, 0) + v
        sets.update(op.set)
        for k, m in op.max.items():
            maxes[k] = max(maxes.get(k, m), m)
        batch.items.extend(op.items)
        batch.attempts.extend(op.attempts)
        batch.publish.extend((env, topic, None) for env, topic in op.item_events)
        for entry, env in op.job_outbox:
            outbox.append(entry)
            batch.publish.append((env, entry["topic"], entry["id"]))
    update: dict[str, Any] = {}
    if inc:
        update["$inc"] = inc
    if sets:
        update["$set"] = sets
    if maxes:
        update["$max"] = maxes
    if outbox:
        update["$push"] = {"_outbox": {"$each": outbox}}
    return update, batch


class _JobLoop:
    """The lifecycle the writer and the flusher share: one background loop per job, woken by ``_wake``;
    ``close`` lets it finish what is queued and re-raises its failure as :class:`JobAborted`, ``abort`` cancels."""

    _name = "loop"
    _failure = "failed"

    def __init__(self, job_id: str) -> None:
        self._job_id = job_id
        self._wake = asyncio.Event()
        self._closed = False
        self.error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"{self._name}:{self._job_id}")

    async def close(self) -> None:
        """Finish what is queued, then stop."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            await self._task
        if self.error is not None:
            raise JobAborted(f"{self._failure}: {self.error!r}")

    def abort(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()


class JobWriter(_JobLoop):
    """One sequential writer per job: fenced job update → attempts → items (ordered) → hand over to the flusher.

    A transient storage failure (MongoDB away: connection lost, server restarting) does not lose anything: the
    batch in hand and everything submitted meanwhile stay queued, :attr:`storage_ok` turns false (the runner
    stops launching provider calls; calls in flight finish and their operations queue up), and the same batch is
    sent again with backoff until it is durable, for at most ``max_outage_s``. Sending a batch again is
    idempotent: the job update is numbered (``write_seq``, see :meth:`GenerationRepository.write_batch`),
    attempts are keyed by id, items already stored with the same envelope id are skipped. When the job is not
    ours any more (the outage outlasted the lease and another process claimed it) or the outage lasts too long,
    the attempts held are stored as orphans (billing) before the writer fails."""

    _name = "writer"
    _failure = "job write failed"

    def __init__(
        self,
        repo: GenerationRepository,
        job_id: str,
        owner: str,
        run: int,
        on_written: Callable[[Batch], None],
        watermarks: Callable[[], dict[str, int]],
        *,
        write_seq: int = 0,
        max_outage_s: float = 120.0,
        retry_base_s: float = 0.1,
        retry_cap_s: float = 2.0,
        lease_until: Callable[[], datetime] | None = None,
        on_storage: Callable[[bool], None] | None = None,
    ) -> None:
        super().__init__(job_id)
        self._repo = repo
        self._owner = owner
        self._run = run
        self._on_written = on_written
        self._watermarks = watermarks
        self._seq = write_seq
        self._max_outage_s = max_outage_s
        self._retry_base_s = retry_base_s
        self._retry_cap_s = retry_cap_s
        self._lease_until = lease_until
        self._on_storage = on_storage
        self._queue: list[tuple[Op, asyncio.Future[None]]] = []
        self._storage = asyncio.Event()
        self._storage.set()
        self.writes = 0
        self.retries = 0
        self.outages = 0
        self.orphaned = 0

    @property
    def backlog(self) -> int:
        return len(self._queue)

    @property
    def storage_ok(self) -> bool:
        """False while the writer is waiting for the database to come back, or once it failed."""
        return self._storage.is_set() and self.error is None

    async def storage_available(self) -> None:
        """Wait while the database is away (the writer is retrying a batch); raises :class:`JobAborted` once the
        writer failed (nothing more could be stored: no new provider call)."""
        await self._storage.wait()
        if self.error is not None:
            raise JobAborted(f"writer failed: {self.error!r}")

    def submit(self, op: Op) -> asyncio.Future[None]:
        """Queue an operation; the future resolves once it is durable. Never cancelled by the caller's fate."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.error is not None:
            fut.set_exception(JobAborted(f"writer failed: {self.error!r}"))
            fut.exception()  # mark retrieved
            return fut
        if self._closed:
            raise RuntimeError("writer closed")
        self._queue.append((op, fut))
        self._wake.set()
        return fut

    def _set_storage(self, ok: bool) -> None:
        if ok == self._storage.is_set():
            return
        if ok:
            self._storage.set()
        else:
            self._storage.clear()
        if self._on_storage is not None:
            self._on_storage(ok)

    async def _write_once(self, update: dict[str, Any], batch: Batch, seq: int, again: bool) -> None:
        body = {k: dict(v) for k, v in update.items()}
        if again and self._lease_until is not None:
            # the renewals failed during the outage: the first write that gets through extends the lease
            body.setdefault("$set", {})["lease_until"] = self._lease_until()
        await self._repo.write_batch(self._job_id, self._owner, self._run, seq, body)
        await self._repo.insert_attempts(batch.attempts)
        await self._repo.insert_items(batch.items, again=again)

    async def _write(self, ops: Sequence[Op]) -> Batch:
        update, batch = merge_ops(ops)
        marks = self._watermarks()
        if marks:
            update.setdefault("$max", {}).update(marks)
        self._seq += 1
        seq = self._seq
        again = False
        outage_since: float | None = None
        tries = 0
        while True:
            try:
                await self._write_once(update, batch, seq, again)
                break
            except Exception as exc:
                if not is_transient(exc):
                    raise
                now = time.monotonic()
                if outage_since is None:
                    outage_since = now
                    self.outages += 1
                    self._set_storage(False)
                    log.warning(
                        "job %s: storage unavailable, holding %d attempt(s) and %d item(s) and retrying: %r",
                        self._job_id,
                        len(batch.attempts),
                        len(batch.items),
                        exc,
                    )
                if now - outage_since >= self._max_outage_s:
                    raise
                tries += 1
                self.retries += 1
                again = True
                delay = min(self._retry_cap_s, self._retry_base_s * 2 ** min(tries, 16))
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
        if outage_since is not None:
            log.info(
                "job %s: storage back after %.1f s (%d retries)",
                self._job_id,
                time.monotonic() - outage_since,
                tries,
            )
            self._set_storage(True)
        self.writes += 1
        record_batch(batch.attempts, batch.items)
        return batch

    async def _salvage(self, ops: Sequence[Op]) -> None:
        """Best effort before failing: store the attempts held (answered calls the provider billed)."""
        attempts = [a for op in ops for a in op.attempts]
        if not attempts:
            return
        try:
            self.orphaned += await self._repo.insert_orphan_attempts(attempts, self._run)
            log.warning("job %s: stored %d orphan attempt(s) before aborting", self._job_id, self.orphaned)
        except Exception as exc:
            log.error("job %s: %d attempt(s) could not be stored: %r", self._job_id, len(attempts), exc)

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._queue:
                if self._closed:
                    return
                continue
            queued, self._queue = self._queue, []
            try:
                batch = await self._write([op for op, _ in queued])
            except BaseException as exc:
                self.error = exc
                held = queued + self._queue
                self._queue = []
                if not isinstance(exc, asyncio.CancelledError):
                    await self._salvage([op for op, _ in held])
                for _, fut in held:
                    if not fut.done():
                        fut.set_exception(JobAborted(f"job write failed: {exc!r}"))
                        fut.exception()
                self._set_storage(True)  # release whoever waits: the futures tell them the writer failed
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return
            self._on_written(batch)
            for _, fut in queued:
                if not fut.done():
                    fut.set_result(None)
            if self._queue:
                self._wake.set()


async def retry_transient(
    what: str, call: Callable[[], Awaitable[None]], *, max_outage_s: float = 120.0, cap_s: float = 2.0
) -> None:
    """Run an idempotent storage call, retrying it with backoff while the database is away."""
    since = time.monotonic()
    tries = 0
    while True:
        try:
            await call()
            return
        except Exception as exc:
            if not is_transient(exc) or time.monotonic() - since >= max_outage_s:
                raise
            tries += 1
            if tries == 1:
                log.warning("%s: storage unavailable, retrying: %r", what, exc)
            await asyncio.sleep(min(cap_s, 0.1 * 2 ** min(tries, 16)) * (0.5 + random.random() / 2))


# --------------------------------------------------------------------------------------------------------
# flusher


class JobFlusher(_JobLoop):
    """Publishes what the writer made durable, in order, and tracks the publication watermarks."""

    _name = "flusher"
    _failure = "flush failed"

    def __init__(
        self,
        repo: GenerationRepository,
        events: EventSink,
        job_id: str,
        progress: Callable[[], Message | None],
        published_index: int = -1,
        published_rejected: int = -1,
    ) -> None:
        super().__init__(job_id)
        self._repo = repo
        self._events = events
        self._progress = progress
        self._pending: list[Batch] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self.published = 0
        self.published_index = published_index
        self.published_rejected = published_rejected
        self._persisted = (published_index, published_rejected)

    def enqueue(self, batch: Batch) -> None:
        self._pending.append(batch)
        self._idle.clear()
        self._wake.set()

    def unsaved_watermarks(self) -> dict[str, int]:
        """Watermarks not yet stored on the job document (the writer adds them to its next update)."""
        current = (self.published_index, self.published_rejected)
        if current == self._persisted:
            return {}
        self._persisted = current
        return {"published_index": current[0], "published_rejected": current[1]}

    async def save_watermarks(self) -> None:
        marks = (self.published_index, self.published_rejected)
        await retry_transient(
            f"job {self._job_id}: watermarks", lambda: self._repo.set_watermarks(self._job_id, *marks)
        )
        self._persisted = marks

    async def flush(self, batches: Sequence[Batch]) -> None:
        publish = [p for b in batches for p in b.publish]
        if publish:
            await self._events.publish_many([(env, topic) for env, topic, _ in publish])
            self.published += len(publish)
        for b in batches:
            for item in b.items:
                index = int(item["index"])
                if index >= 0:
                    self.published_index = max(self.published_index, index)
                else:
                    self.published_rejected = max(self.published_rejected, -index - 1)
        outbox_ids = [oid for _, _, oid in publish if oid is not None]
        if outbox_ids:  # idempotent: retried while the database is away (the events are on Kafka already)
            await retry_transient(
                f"job {self._job_id}: outbox", lambda: self._repo.pull_outbox(self._job_id, outbox_ids)
            )

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._pending:
                batches, self._pending = self._pending, []
                try:
                    await self.flush(batches)
                except Exception as exc:
                    self.error = exc
                    log.warning("publishing for job %s failed (resume will republish): %s", self._job_id, exc)
                    self._idle.set()
                    return
                progress = self._progress()
                if progress is not None:
                    with contextlib.suppress(Exception):
                        await self._events.publish(progress)
            if not self._pending:
                self._idle.set()
                if self._closed:
                    return

    async def drain(self) -> None:
        await self._idle.wait()
        if self.error is not None:
            raise JobAborted(f"flush failed: {self.error!r}")


# --------------------------------------------------------------------------------------------------------
# the runner


@dataclass
class _SlotUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0

    def add(self, result: ChatResult | None) -> None:
        self.calls += 1
        if result is not None:
            self.prompt_tokens += result.prompt_tokens
            self.completion_tokens += result.completion_tokens
            self.cost_usd += result.cost_usd

    def usage(self) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cost_usd=round(self.cost_usd, 10),
        )

    def doc(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 10),
        }


class JobRunner:
    def __init__(self, doc: Mapping[str, Any], deps: RunnerDeps) -> None:
        self.doc = dict(doc)
        self.deps = deps
        self.job_id: str = str(doc["_id"])
        self.user_id: str = str(doc["user_id"])
        self.run_no: int = int(doc.get("run", 1))
        self.request = GenerationRequested.model_validate_json(doc["request"])
        self.requested = self.request.count
        self._cancel = asyncio.Event()
        self._pause = asyncio.Event()
        self._wake = asyncio.Event()
        self._tasks: dict[asyncio.Task[None], int] = {}
        self.scheduler: Scheduler | None = None
        self.writer: JobWriter | None = None
        self.flusher: JobFlusher | None = None
        self._renewer: asyncio.Task[None] | None = None
        # totals of a fresh job; a resumed job recomputes them from `attempts` and `items` (see _recover)
        self.calls = 0
        self.item_attempts = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost_usd = 0.0
        self.next_index = 0
        self.next_rejected = 0
        self.next_slot = int(doc.get("next_slot", 0))
        self.write_seq = int(doc.get("write_seq", 0))
        self.accepted_docs: list[dict[str, Any]] = []
        self.published_index = int(doc.get("published_index", -1))
        self.published_rejected = int(doc.get("published_rejected", -1))
        self.hashes: set[str] = set()
        self.unique = UniqueState()
        self.rules: CompiledRules | None = None
        self.schema: Any = None
        self.throttle = ProgressThrottle(deps.config.progress_interval_s)
        self.rate = RateEstimator()
        self.outcome_status: str | None = None
        self._max_backlog = max(16, 2 * self.request.concurrency)

    # --- control from outside ---------------------------------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()
        self._wake.set()

    def pause(self) -> None:
        """Stop without a terminal state (shutdown): in-flight calls are abandoned, the lease is released."""
        self._pause.set()
        self._wake.set()

    # --- helpers ------------------------------------------------------------------------------------------
    def _now(self) -> datetime:
        return self.deps.clock()

    def _entry(self, message: Message) -> tuple[dict[str, Any], Envelope]:
        envelope = self.deps.events.envelope_for(message)
        return outbox_entry(envelope, message.TOPIC), envelope

    def _usage(self) -> Usage:
        cost = self.scheduler.cost_usd if self.scheduler else self.cost_usd
        return Usage(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cost_usd=round(cost, 10),
        )

    def progress_event(self, force: bool = False) -> GenerationProgress | None:
        sched = self.scheduler
        if sched is None:
            return None
        now = time.monotonic()
        if not force and not self.throttle.try_emit(now):
            return None
        usage = self._usage()
        return GenerationProgress(
            job_id=self.job_id,
            user_id=self.user_id,
            requested=self.requested,
            succeeded=sched.succeeded,
            rejected=sched.rejected,
            in_flight=len(sched.in_flight),
            attempts=self.calls,
            usage=usage,
            projected_cost_usd=projected_cost(self.requested, sched.succeeded, usage.cost_usd),
            eta_seconds=eta_seconds(self.requested - sched.succeeded, self.rate.rate(now)),
        )

    async def _submit(self, op: Op) -> None:
        """Queue a write without waiting for it to be durable (nothing depends on it: after a crash the job
        resumes from what is durable and regenerates the rest); wait only when the writer falls behind."""
        assert self.writer is not None
        fut = self.writer.submit(op)
        if self.writer.backlog > self._max_backlog:
            await fut

    def _on_written(self, batch: Batch) -> None:
        assert self.flusher is not None
        self.flusher.enqueue(batch)

    def _on_storage(self, ok: bool) -> None:
        """The writer lost (False) or regained (True) the database: launches wait while it is away."""
        self._wake.set()

    # --- lifecycle ------------------------------------------------------------------------------------------
    async def run(self) -> str | None:
        """Run (or resume) the job; returns the terminal status, or None when aborted/paused."""
        self._renewer = asyncio.create_task(self._renew_loop(), name=f"lease:{self.job_id}")
        try:
            await self._recover()
            self.flusher = JobFlusher(
                self.deps.repo,
                self.deps.events,
                self.job_id,
                self.progress_event,
                self.published_index,
                self.published_rejected,
            )
            self.writer = JobWriter(
                self.deps.repo,
                self.job_id,
                self.deps.owner,
                self.run_no,
                self._on_written,
                self.flusher.unsaved_watermarks,
                write_seq=self.write_seq,
                max_outage_s=self.deps.config.storage_outage_s,
                lease_until=lambda: self._now() + self.deps.config.lease_ttl,
                on_storage=self._on_storage,
            )
            self.writer.start()
            self.flusher.start()
            status = await self._run()
            await self.writer.close()
            await self.flusher.close()
            await self.flusher.save_watermarks()
            repo, owner, run_no, outage = self.deps.repo, self.deps.owner, self.run_no, self.deps.config
            if status is not None:
                await retry_transient(
                    f"job {self.job_id}: settle",
                    lambda: _discard(repo.settle(self.job_id, owner, run_no)),
                    max_outage_s=outage.storage_outage_s,
                )
            else:
                await retry_transient(
                    f"job {self.job_id}: release",
                    lambda: repo.release(self.job_id, owner, run_no),
                    max_outage_s=outage.storage_outage_s,
                )
            return status
        except (LeaseLost, JobAborted) as exc:
            log.warning("job %s aborted (will be resumed): %s", self.job_id, exc)
            return None
        finally:
            await self._stop_tasks()
            if self.writer is not None:
                self.writer.abort()
            if self.flusher is not None:
                self.flusher.abort()
            if self._renewer is not None:
                self._renewer.cancel()
                with contextlib.suppress(BaseException):
                    await self._renewer

    def _stored_item_event(self, d: Mapping[str, Any]) -> tuple[Envelope, str]:
        usage = Usage.model_validate(d.get("usage") or {})
        message: Message
        if d.get("status") == "accepted":
            message = ItemGenerated(
                job_id=self.job_id,
                user_id=self.user_id,
                index=int(d["index"]),
                data=json.loads(d["data_json"]),
                attempts=max(1, int(d.get("attempts", 1))),
                usage=usage,
                content_hash=str(d.get("content_hash", "")),
            )
        else:
            message = ItemRejected(
                job_id=self.job_id,
                user_id=self.user_id,
                slot=int(d.get("slot", 0)),
                reason=d.get("reason", "invalid"),
                errors=list(d.get("errors") or []),
                last_output=d.get("last_output"),
                attempts=int(d.get("attempts", 0)),
                usage=usage,
            )
        return self.deps.events.envelope_for(message, message_id=d.get("event_id")), message.TOPIC

    async def _recover(self) -> None:
        """Rebuild a resumed job from what is durable, and publish what a previous owner may not have."""
        repo = self.deps.repo
        fresh = self.run_no <= 1 and self.doc.get("status") == state.QUEUED
        outbox = list(self.doc.get("_outbox") or [])
        if fresh and not outbox:
            return
        items = await repo.job_items(self.job_id)
        accepted = sorted((d for d in items if d.get("status") == "accepted"), key=lambda d: int(d["index"]))
        rejected = sorted((d for d in items if d.get("status") == "rejected"), key=lambda d: -int(d["index"]))
        indexes = [int(d["index"]) for d in accepted]
        if indexes != list(range(len(indexes))):
            log.error("job %s: item indexes are not dense: %s", self.job_id, indexes[:50])
        self.accepted_docs = accepted
        self.next_index = indexes[-1] + 1 if indexes else 0
        self.next_rejected = -int(rejected[-1]["index"]) if rejected else 0
        totals = await repo.attempt_totals(self.job_id)
        self.calls = totals["calls"]
        self.item_attempts = totals["item_attempts"]
        self.prompt_tokens = totals["prompt_tokens"]
        self.completion_tokens = totals["completion_tokens"]
        self.cost_usd = totals["cost_usd"]
        self.next_slot = max(self.next_slot, totals["next_slot"])
        # publish what may not have reached Kafka: job-level entries around the item events
        started = [e for e in outbox if e["envelope"]["type"] == GenerationStarted.TYPE]
        later = [e for e in outbox if e["envelope"]["type"] != GenerationStarted.TYPE]
        unpublished = [d for d in accepted if int(d["index"]) > self.published_index] + [
            d for d in rejected if -int(d["index"]) - 1 > self.published_rejected
        ]
        publish = [(Envelope.model_validate(e["envelope"]), e["topic"]) for e in started]
        publish += [self._stored_item_event(d) for d in unpublished]
        publish += [(Envelope.model_validate(e["envelope"]), e["topic"]) for e in later]
        if publish:
            await self.deps.events.publish_many(publish)
            log.info("job %s: republished %d event(s) after resume", self.job_id, len(publish))
        if outbox:
            await repo.pull_outbox(self.job_id, [e["id"] for e in outbox])
        self.published_index = max(self.published_index, self.next_index - 1)
        self.published_rejected = max(self.published_rejected, self.next_rejected - 1)
        await repo.set_watermarks(self.job_id, self.published_index, self.published_rejected)
        # the live counters are a cache: make them equal to the durable truth again
        await repo.write(
            self.job_id,
            self.deps.owner,
            self.run_no,
            {
                "$set": {
                    "counts.succeeded": len(accepted),
                    "counts.rejected": len(rejected),
                    "counts.attempts": self.calls,
                    "counts.item_attempts": self.item_attempts,
                    "usage.prompt_tokens": self.prompt_tokens,
                    "usage.completion_tokens": self.completion_tokens,
                    "usage.cost_usd": round(self.cost_usd, 10),
                    "next_index": self.next_index,
                    "next_rejected": self.next_rejected,
                    "next_slot": self.next_slot,
                }
            },
        )

    async def _stop_tasks(self) -> None:
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _renew_loop(self) -> None:
        cfg = self.deps.config
        while True:
            await asyncio.sleep(cfg.lease_renew_s)
            try:
                doc = await self.deps.repo.renew(
                    self.job_id, self.deps.owner, self.run_no, self._now() + cfg.lease_ttl
                )
            except Exception as exc:  # Mongo hiccup: the lease still has ttl to spare
                log.warning("lease renewal of %s failed: %s", self.job_id, exc)
                continue
            if doc is None:
                log.warning("lease of job %s lost", self.job_id)
                self.pause()
                return
            if doc.get("cancel_requested"):
                self.cancel()

    async def _run(self) -> str | None:
        doc = self.doc
        status = str(doc.get("status", state.QUEUED))
        if state.is_terminal(status):
            return status  # only the outbox needed publishing (done by _recover)
        req = self.request
        tpl = req.template
        mode = req.validation_mode
        fmt = tpl.output_format
        if doc.get("cancel_requested"):
            return await self._finish_early(status, state.CANCELLED)
        try:
            self.rules = compile_rules(tpl.validation.rules, output_format=fmt)
            if fmt == "json" and tpl.json_schema is not None:
                self.schema = compile_schema(tpl.json_schema)
            elif fmt == "json" and mode == "strict":
                raise ValueError("strict validation of JSON output needs a schema")
        except Exception as exc:
            return await self._finish_early(status, state.FAILED, "invalid_template", f"{exc}"[:1000])
        # dedup / unique state and the done targets of a resumed job
        done_targets: list[int] = []
        for item in self.accepted_docs:
            done_targets.append(int(item.get("target", item.get("index", 0))))
            if item.get("content_hash"):
                self.hashes.add(str(item["content_hash"]))
            if self.rules.unique and item.get("data_json") is not None:
                self.unique.commit(json.loads(item["data_json"]), self.rules)
        try:
            provider, model_id = await self.deps.resolve_provider(req.model.id, req.model.provider)
        except Exception as exc:
            return await self._finish_early(status, state.FAILED, "model_not_found", f"{exc}"[:1000])
        limiter = self.deps.limiter_for(getattr(provider, "name", req.model.provider or "openrouter"))
        cfg = self.deps.config
        self.scheduler = sched = Scheduler(
            requested=self.requested,
            concurrency=req.concurrency,
            budget=attempt_budget(self.requested, req.max_attempts_per_item, cfg.attempt_budget_factor),
            max_cost_usd=req.max_cost_usd,
            breaker=CircuitBreaker(
                window=cfg.breaker_window, min_calls=cfg.breaker_min_calls, threshold=cfg.breaker_threshold
            ),
            done_targets=done_targets,
            next_slot=self.next_slot,
            item_attempts=self.item_attempts,
            cost_usd=self.cost_usd,
            calls=self.calls,
            rejected=self.next_rejected,
        )
        self.rate.start(time.monotonic())
        assert self.writer is not None
        if status == state.QUEUED:
            now = self._now()
            started = GenerationStarted(
                job_id=self.job_id,
                user_id=self.user_id,
                requested=self.requested,
                model=req.model,
                template_id=tpl.id,
                template_version=tpl.version,
                started_at=now,
            )
            await self.writer.submit(
                Op(
                    set={
                        "status": state.transition(status, state.RUNNING),
                        "started_at": now,
                        "updated_at": now,
                    },
                    job_outbox=[self._entry(started)],
                )
            )
            self.doc["started_at"] = now
            status = state.RUNNING
        plan = expand_tasks(req.tasks or tpl.tasks)
        structured = fmt == "json" and tpl.json_schema is not None
        strict = structured and is_strict_compatible(tpl.json_schema)
        ctx = _SlotContext(provider, model_id, limiter, plan, structured, strict)

        while True:
            if self._pause.is_set():
                await self._abandon_all()
                return None
            if self._cancel.is_set():
                sched.cancel()
            if sched.stop_reason in ("cancelled", "fatal_error") and self._tasks:
                await self._abandon_all()
            # no new provider call while the database is away: what they would produce could not be stored
            while (slot_plan := self._next_plan()) is not None:
                task = asyncio.create_task(
                    self._slot(slot_plan, ctx), name=f"slot:{self.job_id}:{slot_plan.slot}"
                )
                self._tasks[task] = slot_plan.slot
                task.add_done_callback(self._slot_done)
            if sched.finished and not self._tasks:
                break
            await self._wake.wait()
            self._wake.clear()
            for task in [t for t in self._tasks if t.done()]:
                self._tasks.pop(task)
                if task.cancelled():
                    continue
                failure = task.exception()
                if isinstance(failure, (LeaseLost, JobAborted)):
                    raise failure
                if failure is not None:
                    log.error("slot of job %s crashed", self.job_id, exc_info=failure)
                    sched.fail("internal_error", f"internal error: {type(failure).__name__}")
        return await self._finish(status)

    def _slot_done(self, _task: asyncio.Task[None]) -> None:
        self._wake.set()

    async def _abandon_all(self) -> None:
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=self.deps.config.cancel_grace_s + 1.0)
        for t in tasks:
            self._tasks.pop(t, None)
            if t.done() and not t.cancelled():
                exc = t.exception()
                if isinstance(exc, (LeaseLost, JobAborted)):
                    raise exc

    # --- terminal writes ----------------------------------------------------------------------------------
    def _terminal_event(
        self, status: str, stop_reason: str | None, code: str | None, reason: str | None
    ) -> Message:
        sched = self.scheduler
        succeeded = sched.succeeded if sched else self.next_index
        rejected = sched.rejected if sched else int((self.doc.get("counts") or {}).get("rejected", 0))
        usage = self._usage()
        common: dict[str, Any] = {
            "job_id": self.job_id,
            "user_id": self.user_id,
            "succeeded": succeeded,
            "rejected": rejected,
            "attempts": self.calls,
            "usage": usage,
        }
        if status == state.CANCELLED:
            return GenerationCancelled(**common)
        if status == state.FAILED:
            return GenerationFailed(code=code or "failed", reason=reason or "the job failed", **common)
        started = self.doc.get("started_at")
        duration = 0.0
        if isinstance(started, datetime):
            if started.tzinfo is None:
                started = started.replace(tzinfo=UTC)
            duration = max(0.0, (self._now() - started).total_seconds())
        return GenerationCompleted(
            status="completed" if status == state.COMPLETED else "completed_with_errors",
            requested=self.requested,
            duration_seconds=round(duration, 3),
            stop_reason=stop_reason,
            **common,
        )

    async def _terminal(
        self, current: str, status: str, stop_reason: str | None, code: str | None, reason: str | None
    ) -> str:
        assert self.writer is not None
        now = self._now()
        event = self._terminal_event(status, stop_reason, code, reason)
        sets: dict[str, Any] = {
            "status": state.transition(current, status),
            "finished_at": now,
            "updated_at": now,
            "stop_reason": stop_reason,
        }
        if code:
            sets["error"] = {"code": code, "reason": reason}
        if status == state.CANCELLED:
            sets["cancelled_at"] = now
        await self.writer.submit(Op(set=sets, job_outbox=[self._entry(event)]))
        self.outcome_status = status
        log.info("job %s ended %s (%s)", self.job_id, status, stop_reason or code or "ok")
        return status

    async def _finish_early(
        self, current: str, status: str, code: str | None = None, reason: str | None = None
    ) -> str:
        stop = (
            "cancelled" if status == state.CANCELLED else ("fatal_error" if status == state.FAILED else None)
        )
        return await self._terminal(current, status, stop, code, reason)

    async def _finish(self, current: str) -> str:
        assert self.scheduler is not None
        outcome = self.scheduler.outcome()
        return await self._terminal(
            current, outcome.status, outcome.stop_reason, outcome.code, outcome.reason
        )

    # --- one slot ----------------------------------------------------------------------------------------
    async def _slot(self, plan: SlotPlan, ctx: _SlotContext) -> None:
        """One concurrency slot: works its item, then takes the next one itself while the scheduler allows,
        so a freed slot calls the provider again at once instead of after a round trip through the job loop
        (task end → wake-up → launch → new task), which cost ~10 ms per item under load."""
        current: SlotPlan | None = plan
        while current is not None:
            await self._item(current, ctx)
            current = self._next_plan()

    def _next_plan(self) -> SlotPlan | None:
        """The next target to start, if any: for the job loop's launches and for a slot that finished its target.
        None while paused, cancelled, storage is away, at the concurrency limit, or when the rest is in flight."""
        sched = self.scheduler
        writer = self.writer
        if sched is None or writer is None or self._pause.is_set() or self._cancel.is_set():
            return None
        if not writer.storage_ok or not sched.can_launch():
            return None
        return sched.launch()

    async def _item(self, plan: SlotPlan, ctx: _SlotContext) -> None:
        sched = self.scheduler
        assert sched is not None
        assert self.writer is not None
        assert self.rules is not None
        req = self.request
        tpl = req.template
        fmt = tpl.output_format
        ended = False
        try:
            task_vars, _task_no, task_index = task_for_target(ctx.plan, plan.target)
            try:
                prompts = self.deps.renderer.render_prompts(
                    tpl.prompts.system,
                    tpl.prompts.user,
                    build_context(
                        index=plan.target,
                        task_index=task_index,
                        job_id=self.job_id,
                        now=self._now(),
                        template_variables=tpl.variables,
                        task=task_vars,
                        request_variables=req.variables,
                    ),
                )
            except RenderError as exc:
                sched.fail("render_error", f"the template could not be rendered: {exc}"[:1000])
                return
            messages = first_messages(prompts.system, prompts.user)
            usage = _SlotUsage()
            item_attempt = 0
            call_no = 0
            last_text: str | None = None
            while True:
                await self.writer.storage_available()
                if not sched.begin_attempt():
                    return
                item_attempt += 1
                kind = "first" if item_attempt == 1 else "repair"
                retry = 0
                while True:  # one item attempt: a provider call, retried on transient errors
                    call_no += 1
                    request = ChatRequest(
                        model=ctx.model_id,
                        messages=[ChatMessage(role=r, content=c) for r, c in messages],
                        temperature=req.model.temperature,
                        max_tokens=req.model.max_tokens,
                        json_schema=tpl.json_schema if ctx.structured else None,
                        strict=ctx.strict,
                    )
                    started_at = self._now()
                    t0 = time.perf_counter()
                    result: ChatResult | None = None
                    error: ProviderError | None = None
                    sched.call_started()
                    try:
                        async with ctx.limiter.slot(self.job_id):
                            result = await ctx.provider.chat(request)
                    except ProviderError as exc:
                        error = exc
                    except asyncio.CancelledError:
                        sched.call_abandoned()
                        raise
                    latency_ms = (time.perf_counter() - t0) * 1000.0
                    sched.call_finished(result.cost_usd if result else 0.0)
                    usage.add(result)
                    self.calls += 1
                    if result is not None:
                        self.prompt_tokens += result.prompt_tokens
                        self.completion_tokens += result.completion_tokens
                    attempt = self._attempt_doc(
                        plan,
                        call_no,
                        item_attempt,
                        kind,
                        retry,
                        request,
                        result,
                        error,
                        started_at,
                        latency_ms,
                        ctx,
                    )
                    if error is None:
                        break
                    code = fatal_code(error)
                    if code is not None:
                        attempt["outcome"] = "fatal"
                        self._record(attempt, item_attempt_done=True)
                        sched.fail(code, fatal_reason(code, error))
                        return
                    if (
                        error.retryable
                        and self.deps.config.backoff.should_retry(retry + 1)
                        and not sched.stopped
                    ):
                        retry += 1
                        attempt["outcome"] = "retried"
                        self._record(attempt, item_attempt_done=False)
                        await asyncio.sleep(
                            self.deps.config.backoff.delay(retry, retry_after=error.retry_after)
                        )
                        await self.writer.storage_available()
                        continue
                    break  # transient error, retries exhausted: the item attempt failed
                # --- evaluate (synchronous from here to the submit: atomic w.r.t. other slots) ---------
                errors: list[dict[str, Any]]
                value: Any = None
                digest = ""
                if error is not None:
                    outcome = "provider_error"
                    errors = [{"path": "$", "rule": "provider", "message": str(error)[:300]}]
                else:
                    assert result is not None
                    last_text = result.text
                    parsed = parse_output(result.text, fmt)
                    if not parsed.ok:
                        outcome = "invalid"
                        errors = [
                            {"path": "$", "rule": "parse", "message": parsed.error or "could not parse"}
                        ]
                    else:
                        value = parsed.value
                        report = validate_item(
                            value,
                            mode=req.validation_mode,
                            schema=self.schema,
                            rules=self.rules,
                            unique_state=self.unique,
                            output_format=fmt,
                        )
                        if not report.valid:
                            outcome = "invalid"
                            errors = [e.model_dump() for e in report.errors]
                        else:
                            digest = content_hash(value)
                            if req.dedup and digest in self.hashes:
                                outcome = "duplicate"
                                errors = [
                                    {
                                        "path": "$",
                                        "rule": "duplicate",
                                        "message": "identical to an earlier item",
                                    }
                                ]
                            else:
                                outcome = "valid"
                                errors = []
                attempt["outcome"] = outcome
                attempt["errors"] = error_summary(errors, 5)
                if outcome == "valid":
                    sched.attempt_outcome(True)
                    ended = True
                    await self._accept(plan, attempt, value, digest, item_attempt, usage, task_index)
                    return
                sched.attempt_outcome(False)
                if item_attempt >= req.max_attempts_per_item:
                    ended = True
                    reason = {"duplicate": "duplicate", "provider_error": "provider_error"}.get(
                        outcome, "invalid"
                    )
                    await self._reject(plan, attempt, reason, errors, last_text, item_attempt, usage)
                    return
                await self._submit(self._attempt_op(attempt, item_attempt_done=True))
                messages = repair_messages(
                    prompts.system,
                    prompts.user,
                    last_text,
                    errors,
                    output_format=fmt,
                    duplicate=outcome == "duplicate",
                )
        finally:
            if not ended:
                sched.slot_abandoned(plan.slot)

    def _attempt_doc(
        self,
        plan: SlotPlan,
        call_no: int,
        item_attempt: int,
        kind: str,
        retry: int,
        request: ChatRequest,
        result: ChatResult | None,
        error: ProviderError | None,
        started_at: datetime,
        latency_ms: float,
        ctx: _SlotContext,
    ) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "_id": attempt_id(self.job_id, plan.slot, call_no),
            "job_id": self.job_id,
            "user_id": self.user_id,
            "run": self.run_no,
            "slot": plan.slot,
            "target": plan.target,
            "call": call_no,
            "item_attempt": item_attempt,
            "kind": kind if retry == 0 else "retry",
            "model": ctx.model_id,
            "provider": getattr(ctx.provider, "name", None),
            "messages": len(request.messages),
            "started_at": started_at,
            "latency_ms": round(latency_ms, 1),
            "prompt_tokens": result.prompt_tokens if result else 0,
            "completion_tokens": result.completion_tokens if result else 0,
            "cost_usd": result.cost_usd if result else 0.0,
            "cost_reported": result.cost_reported if result else False,
            "finish_reason": result.finish_reason if result else None,
            "generation_id": result.generation_id if result else None,
            "outcome": None,
            "errors": [],
        }
        if error is not None:
            doc["error"] = {k: v for k, v in error.to_dict().items() if k != "provider"}
        return doc

    def _attempt_op(self, attempt: dict[str, Any], *, item_attempt_done: bool) -> Op:
        attempt["item_attempt_done"] = 1 if item_attempt_done else 0
        inc: dict[str, float] = {
            "counts.attempts": 1,
            "usage.prompt_tokens": attempt["prompt_tokens"],
            "usage.completion_tokens": attempt["completion_tokens"],
            "usage.cost_usd": attempt["cost_usd"],
        }
        if item_attempt_done:
            inc["counts.item_attempts"] = 1
        return Op(inc=inc, max={"next_slot": attempt["slot"] + 1}, attempts=[attempt])

    def _record(self, attempt: dict[str, Any], *, item_attempt_done: bool) -> None:
        assert self.writer is not None
        self.writer.submit(self._attempt_op(attempt, item_attempt_done=item_attempt_done))

    async def _accept(
        self,
        plan: SlotPlan,
        attempt: dict[str, Any],
        value: Any,
        digest: str,
        item_attempt: int,
        usage: _SlotUsage,
        task_index: int,
    ) -> None:
        sched = self.scheduler
        assert sched is not None
        assert self.writer is not None
        assert self.rules is not None
        index = self.next_index
        self.next_index += 1
        self.hashes.add(digest)
        if self.rules.unique:
            self.unique.commit(value, self.rules)
        sched.slot_succeeded(plan.slot)
        self.rate.record(time.monotonic())
        now = self._now()
        item = {
            "_id": item_id(self.job_id, index),
            "job_id": self.job_id,
            "user_id": self.user_id,
            "index": index,
            "status": "accepted",
            "target": plan.target,
            "task_index": task_index,
            "slot": plan.slot,
            "data_json": json.dumps(value, ensure_ascii=False, separators=(",", ":")),
            "content_hash": digest,
            "attempts": item_attempt,
            "calls": usage.calls,
            "usage": usage.doc(),
            "created_at": now,
        }
        event = ItemGenerated(
            job_id=self.job_id,
            user_id=self.user_id,
            index=index,
            data=value,
            attempts=item_attempt,
            usage=usage.usage(),
            content_hash=digest,
        )
        envelope = self.deps.events.envelope_for(event)
        item["event_id"] = envelope.id
        op = self._attempt_op(attempt, item_attempt_done=True)
        op.inc["counts.succeeded"] = 1
        op.inc["next_index"] = 1
        op.items.append(item)
        op.item_events.append((envelope, event.TOPIC))
        await self._submit(op)

    async def _reject(
        self,
        plan: SlotPlan,
        attempt: dict[str, Any],
        reason: str,
        errors: list[dict[str, Any]],
        last_text: str | None,
        item_attempt: int,
        usage: _SlotUsage,
    ) -> None:
        sched = self.scheduler
        assert sched is not None
        assert self.writer is not None
        number = self.next_rejected
        self.next_rejected += 1
        sched.slot_rejected(plan.slot)
        clipped = last_text[:MAX_LAST_OUTPUT_CHARS] if last_text is not None else None
        summary = error_summary(errors)
        item = {
            "_id": rejected_item_id(self.job_id, number),
            "job_id": self.job_id,
            "user_id": self.user_id,
            "index": -(number + 1),
            "status": "rejected",
            "target": plan.target,
            "slot": plan.slot,
            "reason": reason,
            "errors": summary,
            "last_output": clipped,
            "attempts": item_attempt,
            "calls": usage.calls,
            "usage": usage.doc(),
            "created_at": self._now(),
        }
        event = ItemRejected(
            job_id=self.job_id,
            user_id=self.user_id,
            slot=plan.slot,
            reason=reason,
            errors=summary,
            last_output=clipped,
            attempts=item_attempt,
            usage=usage.usage(),
        )
        envelope = self.deps.events.envelope_for(event)
        item["event_id"] = envelope.id
        op = self._attempt_op(attempt, item_attempt_done=True)
        op.inc["counts.rejected"] = 1
        op.inc["next_rejected"] = 1
        op.items.append(item)
        op.item_events.append((envelope, event.TOPIC))
        await self._submit(op)


@dataclass
class _SlotContext:
    provider: Provider
    model_id: str
    limiter: FairLimiter
    plan: list[tuple[dict[str, Any], int, int]]
    structured: bool
    strict: bool


async def _discard(aw: Awaitable[Any]) -> None:
    await aw
