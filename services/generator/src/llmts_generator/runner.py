"""Runs one generation job while this process holds its lease.

Pieces (one set per running job), each in its own module:

- **slots** (:class:`~llmts_generator.slots.SlotWork`): render → call the provider → evaluate (a pure domain
  function: parse → validate → dedup → accept / repair / reject) → write.
- **writer** (:class:`~llmts_generator.writer.JobWriter`): a group commit. Slots enqueue operations
  (:mod:`~llmts_generator.folding`); the writer folds everything queued into one batch and writes batches strictly
  in order: fenced job update (lease check, live counters, job-level outbox) → ``attempts`` → ``items``
  (ordered; the insert reserves the index). What is durable is therefore always a prefix of what was decided.
- **flusher** (:class:`~llmts_generator.flusher.JobFlusher`): publishes each durable batch's events in order,
  pulls the job-level outbox entries, advances the publication watermarks, and emits throttled progress.
- **renewer**: extends the lease every ``lease_renew_seconds`` and notices a cancel requested through another
  process.
- **scheduling** (:class:`~llmts_generator.domain.scheduling.Scheduler`): exactly N, caps, breaker.

The runner depends on the ports only (:mod:`llmts_generator.domain.ports`). A *transient* storage failure
(``GenerationRepository.is_transient``: the database is away for now) is ridden out, not turned into an abort:
the writer keeps the batch in hand and everything submitted meanwhile, no new provider call starts
(``JobWriter.storage_ok``; calls in flight finish and their attempts queue up), and the batch is sent again with
backoff (idempotently) for at most ``RunnerConfig.storage_outage_s``. If the job was taken over meanwhile (the
outage outlasted the lease) or the outage lasts longer, the attempts held are stored as orphans (billing) before
the writer fails.

Any other storage failure or a lost lease aborts the runner without a terminal write ("crash-only"): the next
owner resumes from what is durable (:func:`~llmts_generator.recovery.recover`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from llmts_common.contracts import (
    GenerationProgress,
    GenerationRequested,
    Message,
    Usage,
)
from llmts_common.envelope import Envelope
from llmts_common.outbox import outbox_entry
from llmts_generator.chain import ChainExhausted, ModelChain
from llmts_generator.diversity_run import round_diversity
from llmts_generator.domain import state
from llmts_generator.domain.backoff import BackoffPolicy
from llmts_generator.domain.breaker import CircuitBreaker
from llmts_generator.domain.caching import effective_cache_mode, job_seed
from llmts_generator.domain.evaluation import ItemRules
from llmts_generator.domain.itemvars import ItemVariables, SeedRows
from llmts_generator.domain.limiter import FairLimiter
from llmts_generator.domain.ports import EventSink, GenerationRepository, LeaseLost, ResponseCache
from llmts_generator.domain.progress import ProgressThrottle, RateEstimator, job_progress
from llmts_generator.domain.requests import Renderer
from llmts_generator.domain.rounds import round_caps
from llmts_generator.domain.scheduling import Scheduler, SlotPlan
from llmts_generator.domain.tasks import expand_tasks
from llmts_generator.endings import RoundFigures, started_event, terminal_event
from llmts_generator.flusher import JobFlusher
from llmts_generator.folding import Batch, Op
from llmts_generator.itemdraws import JobInputError, open_item_variables
from llmts_generator.jobloop import JobAborted, retry_transient
from llmts_generator.judging import JobJudge, JudgeUnavailable, attach_quality
from llmts_generator.prefetch import prefetch
from llmts_generator.records import JobRef
from llmts_generator.recovery import JobState, recover
from llmts_generator.slots import SlotContext, SlotWork
from llmts_generator.stopping import drain_calls
from llmts_generator.writer import JobWriter
from llmts_providers import Provider

log = logging.getLogger("llmts.generator.runner")

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
    # on a cancel (or a fatal error) the calls already at the provider are awaited this long: the provider bills
    # them, so their attempts are recorded and charged; what is still out after it is abandoned (not billed)
    cancel_drain_s: float = 30.0
    # how long a running job waits for MongoDB to come back (holding what it decided) before it aborts
    storage_outage_s: float = 120.0
    stream_providers: frozenset[str] = frozenset()  # providers whose calls are streamed (STREAM_PROVIDERS)


@dataclass
class RunnerDeps:
    repo: GenerationRepository
    events: EventSink
    resolve_provider: ProviderResolver
    limiter_for: Callable[[str], FairLimiter]
    renderer: Renderer
    config: RunnerConfig
    owner: str
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    cache: ResponseCache | None = None  # the response cache (None: no job uses one)
    datasets: SeedRows | None = None  # seed dataset rows (None: a job with a seed dataset fails)


class JobRunner:
    def __init__(self, doc: Mapping[str, Any], deps: RunnerDeps) -> None:
        self.doc = dict(doc)
        self.deps = deps
        self.job_id: str = str(doc["_id"])
        self.user_id: str = str(doc["user_id"])
        self.run_no: int = int(doc.get("run", 1))
        self.job = JobRef(self.job_id, self.user_id, self.run_no, int(doc.get("round", 1)))
        self.request = GenerationRequested.model_validate_json(doc["request"])
        self.requested = self.request.count
        self._cancel = asyncio.Event()
        self._pause = asyncio.Event()
        self._wake = asyncio.Event()
        self._tasks: dict[asyncio.Task[None], int] = {}
        self.scheduler: Scheduler | None = None
        self.chain: ModelChain | None = None
        self.judge: JobJudge | None = None  # the job's LLM judge (judging.py)
        self.writer: JobWriter | None = None
        self.variables: ItemVariables | None = None  # seed rows and sampled values per target (itemdraws.py)
        self.flusher: JobFlusher | None = None
        self._renewer: asyncio.Task[None] | None = None
        self.state = JobState.of(doc)
        self.throttle = ProgressThrottle(deps.config.progress_interval_s)
        self.rate = RateEstimator()
        self.outcome_status: str | None = None
        self._max_backlog = max(16, 2 * self.request.concurrency)
        self._drain_on_stop = True  # a cancel or a fatal error awaits the calls at the provider (billed)

    # --- control from outside ---------------------------------------------------------------------------
    def cancel(self, *, drain: bool = True) -> None:
        """No new call; the calls at the provider are awaited (stopping.py) unless ``drain`` is False (an erase)."""
        self._drain_on_stop = self._drain_on_stop and drain
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
        st = self.state
        cost = self.scheduler.cost_usd if self.scheduler else st.cost_usd
        return Usage(
            prompt_tokens=st.prompt_tokens, completion_tokens=st.completion_tokens, cost_usd=round(cost, 10)
        )

    def progress_event(self, force: bool = False) -> GenerationProgress | None:
        sched = self.scheduler
        now = time.monotonic()
        if sched is None or (not force and not self.throttle.try_emit(now)):
            return None
        rate, concurrency = self.rate.rate(now), self.chain.concurrency() if self.chain else {}
        event = job_progress(
            self.job_id, self.user_id, sched, self.state.calls, self._usage(), rate, concurrency
        )
        hits = {"cache_hits": self.state.cache_hits, "cache_misses": self.state.cache_misses}
        return event.model_copy(update=hits | {"judge_usage": JobJudge.usage_of(self.judge)})

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
            await recover(self.deps.repo, self.deps.events, self.job, self.deps.owner, self.doc, self.state)
            self._start_pipeline()
            status = await self._run()
            await self._close(status)
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

    def _start_pipeline(self) -> None:
        st = self.state
        self.flusher = JobFlusher(
            self.deps.repo,
            self.deps.events,
            self.job_id,
            self.progress_event,
            st.published_index,
            st.published_rejected,
        )
        self.writer = JobWriter(
            self.deps.repo,
            self.job_id,
            self.deps.owner,
            self.run_no,
            self._on_written,
            self.flusher.unsaved_watermarks,
            write_seq=st.write_seq,
            max_outage_s=self.deps.config.storage_outage_s,
            lease_until=lambda: self._now() + self.deps.config.lease_ttl,
            on_storage=self._on_storage,
        )
        self.writer.start()
        self.flusher.start()

    async def _close(self, status: str | None) -> None:
        """Drain the writer and the flusher, then settle a terminal job or release the lease of a paused one."""
        assert self.writer is not None
        assert self.flusher is not None
        await self.writer.close()
        await self.flusher.close()
        await self.flusher.save_watermarks()
        repo, owner, run_no = self.deps.repo, self.deps.owner, self.run_no

        async def settle() -> None:
            await repo.settle(self.job_id, owner, run_no)

        async def release() -> None:
            await repo.release(self.job_id, owner, run_no)

        await retry_transient(
            f"job {self.job_id}: {'settle' if status is not None else 'release'}",
            settle if status is not None else release,
            repo.is_transient,
            max_outage_s=self.deps.config.storage_outage_s,
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
                self.cancel(drain=doc.get("cancel_reason") != state.CANCEL_ACCOUNT_DELETED)

    # --- the job ----------------------------------------------------------------------------------------
    async def _run(self) -> str | None:
        status = str(self.doc.get("status", state.QUEUED))
        if state.is_terminal(status):
            return status  # only the outbox needed publishing (done by recover)
        req = self.request
        if self.doc.get("cancel_requested"):
            return await self._finish_early(status, state.CANCELLED)
        try:
            rules = ItemRules.of(req)
        except Exception as exc:
            return await self._finish_early(status, state.FAILED, "invalid_template", f"{exc}"[:1000])
        try:
            self.variables = await open_item_variables(
                req, job_seed(req.seed, self.job_id), self.deps.datasets
            )
            self.judge = await JobJudge.start(req, self.deps, self.state.judge)  # the LLM judge, if any
        except (JobInputError, JudgeUnavailable) as exc:
            return await self._finish_early(status, state.FAILED, exc.code, exc.reason)
        done_targets = self.state.rebuild_dedup(rules.rules)  # dedup state and done targets of a resumed job
        chain = ModelChain(req, self.deps.resolve_provider, self.deps.limiter_for, self.deps.clock)
        chain.streamed = self.deps.config.stream_providers
        try:
            await chain.start(int(self.doc.get("model_position", 0)))
        except ChainExhausted as exc:
            return await self._finish_early(status, state.FAILED, "model_not_found", f"{exc}"[:1000])
        self.chain = chain
        self.scheduler = sched = self._new_scheduler(done_targets)
        self.rate.start(time.monotonic())
        if status == state.QUEUED:
            status = self._mark_started(status)
        assert self.writer is not None
        chain.submit = self.writer.submit
        cache_mode = effective_cache_mode(req.cache, seed_given=req.seed is not None, round_no=self.job.round)
        ctx = SlotContext(
            request=req,
            chain=chain,
            plan=expand_tasks(req.tasks or req.template.tasks),
            rules=rules,
            renderer=self.deps.renderer,
            events=self.deps.events,
            backoff=self.deps.config.backoff,
            clock=self.deps.clock,
            seed=job_seed(req.seed, self.job_id),
            cache=self.deps.cache,
            cache_mode=cache_mode,
            variables=self.variables,
        )
        await prefetch(ctx, self.state, sched.pending, job_id=self.job_id, user_id=self.user_id)
        slots = SlotWork(
            self.job, ctx, self.state, sched, self.writer, self.rate, self._next_plan, self._max_backlog
        )
        attach_quality(slots, self.judge, self._spawn)  # the LLM judge and near-duplicate control (issue 18)
        if not await self._loop(sched, slots):
            return None
        return await self._finish(status)

    def _new_scheduler(self, done_targets: list[int]) -> Scheduler:
        cfg, req, st = self.deps.config, self.request, self.state
        factor, cap = cfg.attempt_budget_factor * (1 + len(req.template.stages)), req.max_cost_usd
        caps = round_caps(self.doc, self.requested, req.max_attempts_per_item, factor, cap)
        return Scheduler(
            requested=self.requested,
            concurrency=req.concurrency,
            budget=caps.budget,
            max_cost_usd=caps.max_cost_usd,
            breaker=CircuitBreaker(
                window=cfg.breaker_window, min_calls=cfg.breaker_min_calls, threshold=cfg.breaker_threshold
            ),
            done_targets=done_targets,
            next_slot=st.next_slot,
            item_attempts=st.item_attempts,
            cost_usd=st.cost_usd,
            calls=st.calls,
            rejected=st.next_rejected,
        )

    def _mark_started(self, status: str) -> str:
        assert self.writer is not None
        now = self._now()
        req = self.request
        started = started_event(req, self.job_id, self.user_id, self.requested, now)
        sets = {"status": state.transition(status, state.RUNNING), "started_at": now, "updated_at": now}
        # not awaited: the writer stores it before anything a slot submits, so the first calls start a database
        # round trip earlier (20-300 ms behind another user's backlog, issue 14); a failure reaches the slots
        self.writer.submit(Op(set=sets, job_outbox=[self._entry(started)]))
        self.doc["started_at"] = now
        return state.RUNNING

    async def _loop(self, sched: Scheduler, slots: SlotWork) -> bool:
        """Launch slots while the scheduler allows until the job is finished; False when paused."""
        while True:
            if self._pause.is_set():
                await self._abandon_all()
                return False
            if self._cancel.is_set():
                sched.cancel()
            if sched.stop_reason in ("cancelled", "fatal_error") and self._tasks:
                if self._drain_on_stop:  # the calls at the provider are billed: awaited (stopping.py)
                    await drain_calls(
                        self._tasks, slots.at_provider, self.deps.config.cancel_drain_s, self.job_id
                    )
                await self._abandon_all()
            # no new provider call while the database is away: what they would produce could not be stored
            while (plan := self._next_plan()) is not None:
                self._spawn(slots.slot(plan), plan.slot)
            if sched.finished and not self._tasks:
                return True
            await self._wake.wait()
            self._wake.clear()
            self._reap(sched)

    def _spawn(self, work: Coroutine[Any, Any, None], slot: int) -> None:
        """Run a slot (or the judging of a slot's item) as a task of the job."""
        task = asyncio.create_task(work, name=f"slot:{self.job_id}:{slot}")
        self._tasks[task] = slot
        task.add_done_callback(self._slot_done)

    def _reap(self, sched: Scheduler) -> None:
        """Forget finished slot tasks; a lost lease or a failed writer aborts the runner, a crash fails the job."""
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
        succeeded = sched.succeeded if sched else self.state.next_index
        rejected = sched.rejected if sched else int((self.doc.get("counts") or {}).get("rejected", 0))
        figures = RoundFigures(
            succeeded, rejected, self.state.calls, self._usage(), JobJudge.usage_of(self.judge)
        )
        return terminal_event(
            self.doc, figures, requested=self.requested, now=self._now(), status=status,
            stop_reason=stop_reason, code=code, reason=reason,
        )  # fmt: skip

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
        diversity = await round_diversity(self.deps.repo, self.writer, self.request, self.variables, status)
        if diversity is not None:  # issue 18 #5: the round's diversity report, on the job and in its event
            sets["diversity"] = diversity
            event = event.model_copy(update={"diversity": diversity})
        terminal = self.writer.submit(Op(set=sets, job_outbox=[self._entry(event)]))
        flush = [self.deps.cache.flush(self.user_id)] if self.deps.cache is not None else []
        await asyncio.gather(terminal, *flush)  # its user's cached answers stored alongside, not before
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
