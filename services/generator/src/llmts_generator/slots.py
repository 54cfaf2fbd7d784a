"""The slots of a running job: render → call the provider (fair adaptive limiter, retries with backoff) →
evaluate (:func:`~llmts_generator.domain.evaluation.evaluate`) → accept / repair / reject.

Everything that must be atomic across the slots of a job (dedup, ``unique`` rules, reserving the next dense index,
the scheduler's counters) happens synchronously between two awaits. A slot does not wait for its writes to be
durable (only for backpressure), and it starts no provider call while the database is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from llmts_common.contracts import GenerationRequested
from llmts_generator.chain import ModelChain, Route
from llmts_generator.domain import fallback
from llmts_generator.domain.backoff import BackoffPolicy
from llmts_generator.domain.caching import CachedAnswer, cache_key, item_seed
from llmts_generator.domain.evaluation import ItemRules, StageRules, Verdict, evaluate
from llmts_generator.domain.failures import fatal_code, fatal_reason
from llmts_generator.domain.itemvars import ItemVariables
from llmts_generator.domain.nearcontrol import NearDupControl
from llmts_generator.domain.ports import EventSink, ResponseCache
from llmts_generator.domain.progress import RateEstimator
from llmts_generator.domain.repair import Message, error_summary, repair_messages, retry_fresh
from llmts_generator.domain.requests import RenderedItem, Renderer, render_item
from llmts_generator.domain.scheduling import STOP_CANCELLED, STOP_FATAL, Scheduler, SlotPlan
from llmts_generator.domain.tasks import TaskRef, item_inputs
from llmts_generator.folding import Op
from llmts_generator.itemdraws import draw_item, item_provenance
from llmts_generator.records import (
    CallRecord,
    ItemOutcome,
    JobRef,
    SlotUsage,
    accepted_op,
    attempt_doc,
    attempt_op,
    rejected_op,
)
from llmts_generator.recovery import JobState
from llmts_generator.stages import StageMemory, complete_item, stage_shape
from llmts_generator.writer import JobWriter
from llmts_providers import ChatRequest, ChatResult, ProviderError
from llmts_providers.deadlines import first_token_listener
from llmts_templating import RenderError

if TYPE_CHECKING:
    from llmts_generator.judging import JudgeStage

FREE_BACKLOG_FACTOR = 16


@dataclass(frozen=True)
class SlotContext:
    """What every slot of a job shares (fixed for the run)."""

    request: GenerationRequested
    chain: (
        ModelChain  # the active model (provider, request shape, limiter); moves on along the fallback chain
    )
    plan: list[TaskRef]
    rules: ItemRules
    renderer: Renderer
    events: EventSink
    backoff: BackoffPolicy
    clock: Callable[[], datetime]
    seed: int = 0  # the job seed (domain/caching): item seeds, provider seeds, cache keys
    cache: ResponseCache | None = None
    cache_mode: str = (
        "off"  # use | refresh | off (the job's `cache`), or write (use without reads that cannot hit)
    )
    rendered: dict[int, RenderedItem] = field(default_factory=dict)  # first prompts rendered ahead (prefetch)
    prefetched: dict[str, CachedAnswer] = field(default_factory=dict)  # cached answers read ahead, by key
    variables: ItemVariables | None = None  # seed dataset rows and sampled values per target (itemdraws)


@dataclass
class _Target:
    """One target worked by a slot: its prompts, item attempts so far, calls, cost, the latest answer."""

    plan: SlotPlan
    rendered: RenderedItem
    usage: SlotUsage = field(default_factory=SlotUsage)
    item_attempt: int = 0
    call_no: int = 0
    last_text: str | None = None
    last_finish: str | None = None  # finish_reason of the latest answer
    fresh: bool = (
        False  # the current item attempt resends the original prompts (a cut answer is not repaired)
    )
    seed: int = 0  # the item seed of the current item attempt (domain/caching.item_seed)
    cache: str | None = None  # the latest call: "hit" (answered from the cache), "miss" (looked up), None
    saved: CachedAnswer | None = None  # what the cached answer cost when it was called
    stage: StageRules | None = None  # a later stage of the item being worked (stages.py), None for main


@dataclass(frozen=True)
class _Call:
    """The end of one item attempt: its attempt document and the answer, or the error retries did not cure."""

    attempt: dict[str, Any]
    result: ChatResult | None
    error: ProviderError | None


class SlotWork:
    """The slots of one job. ``next_plan`` is the job's launch gate (paused, cancelled, storage away, limits)."""

    def __init__(
        self,
        job: JobRef,
        ctx: SlotContext,
        st: JobState,
        scheduler: Scheduler,
        writer: JobWriter,
        rate: RateEstimator,
        next_plan: Callable[[], SlotPlan | None],
        max_backlog: int,
    ) -> None:
        self.job = job
        self.ctx = ctx
        self.st = st
        self.sched = scheduler
        self.writer = writer
        self.rate = rate
        self._next_plan = next_plan
        self._max_backlog = max_backlog
        self._breaker_fallback: asyncio.Future[Route | None] | None = None  # a move started by the breaker
        self.judge: JudgeStage | None = None  # the job's LLM judge (judging.py), set by the runner
        self.near: NearDupControl | None = None  # near-duplicate control (domain/nearcontrol.py)
        self.stage_memory = StageMemory.of(ctx.rules, st.accepted_docs)  # the stages' `unique` values
        # the tasks whose provider call is out right now: on a cancel the runner awaits those (billed, stopping.py)
        self.at_provider: set[asyncio.Task[Any]] = set()

    async def slot(self, plan: SlotPlan) -> None:
        """One concurrency slot: works its target, then takes the next one itself while the scheduler allows, so
        a freed slot calls the provider again at once instead of after a round trip through the job loop (task
        end → wake-up → launch → new task), which cost ~10 ms per item under load."""
        current: SlotPlan | None = plan
        while current is not None:
            await self.target(current)
            current = self._next_plan()

    async def target(self, plan: SlotPlan) -> None:
        """Work one target until it is accepted or rejected, or the job stops (then the slot gives it back)."""
        ended = False
        try:
            rendered = await self._render(plan)
            if rendered is None:
                return
            t = _Target(plan, rendered)
            messages = rendered.messages
            while True:
                await self.writer.storage_available()
                if not self.sched.begin_attempt():
                    return
                t.item_attempt += 1
                t.seed = self._next_seed(t.plan.target)
                call = await self._attempt(t, messages)
                if call is None:
                    return  # a fatal provider error: the job fails
                verdict = self._judge(t, call)
                if verdict.action != "repair":
                    attempt = call.attempt
                    if verdict.action == "accept":  # the item's later stages, if any (stages.py)
                        done = await complete_item(self, t, call, verdict)
                        if done is None:
                            return  # the job stopped before the item was complete
                        attempt, verdict = done
                    # the item is complete here (every stage valid) or rejected: what judges it goes here
                    ended = True
                    await self._conclude(t, attempt, verdict)
                    return
                await self._submit(attempt_op(call.attempt, item_attempt_done=True))
                messages = self._repair(t, verdict)
        finally:
            if not ended:
                self.sched.slot_abandoned(plan.slot)

    # --- steps ------------------------------------------------------------------------------------------
    async def _render(self, plan: SlotPlan) -> RenderedItem | None:
        ctx = self.ctx
        ready = ctx.rendered.pop(plan.target, None)
        if ready is not None:
            return ready
        draw = await draw_item(ctx.variables, plan.target, self.sched)
        if draw is None:
            return None
        try:
            return await render_item(
                ctx.renderer, ctx.request, ctx.plan, plan.target, job_id=self.job.job_id, now=ctx.clock(),
                draw=draw,
            )  # fmt: skip
        except RenderError as exc:
            self.sched.fail("render_error", f"the template could not be rendered: {exc}"[:1000])
            return None

    def _repair(self, t: _Target, verdict: Verdict) -> list[Message]:
        t.fresh = verdict.outcome == "invalid" and retry_fresh(t.last_finish, verdict.errors)
        if t.fresh:
            return t.rendered.messages
        return repair_messages(
            t.rendered.system,
            t.rendered.user,
            t.last_text,
            verdict.errors,
            output_format=self.ctx.rules.output_format,
            duplicate=verdict.outcome == "duplicate",  # a near-duplicate is shown its error: "too similar …"
        )

    async def _attempt(self, t: _Target, messages: list[Message]) -> _Call | None:
        """One item attempt: a provider call, retried on transient errors, moved along the fallback chain when the
        model is gone (:mod:`~llmts_generator.domain.fallback`). None when the error is fatal."""
        kind = "first" if t.item_attempt == 1 else "fresh" if t.fresh else "repair"
        retry = 0
        backoff = self.ctx.backoff
        while True:
            route = self.ctx.chain.current
            t.call_no += 1
            result, error, started_at, latency_ms = await self._call(t, route, messages, lookup=retry == 0)
            call = CallRecord(
                t.call_no,
                t.item_attempt,
                kind if retry == 0 else "retry",
                len(messages),
                result,
                error,
                started_at,
                latency_ms,
            )
            attempt = attempt_doc(
                self.job, t.plan, call, model_id=route.shape.model_id, provider=route.provider_name
            )
            if t.stage is not None:
                attempt["stage"] = t.stage.name
            self._mark_cache(attempt, t)
            if error is None:
                return _Call(attempt, result, None)
            switch = fallback.immediate_reason(error)
            if switch is None and not (error.retryable and backoff.should_retry(retry + 1)):
                switch = fallback.exhausted_reason(error)
            if switch is not None and await self._fall_back(route, switch, error, attempt):
                retry = 0
                continue
            code = fatal_code(error)
            if code is not None:
                attempt["outcome"] = "fatal"
                self._record(attempt, item_attempt_done=True)
                self.sched.fail(code, fatal_reason(code, error))
                return None
            if error.retryable and backoff.should_retry(retry + 1) and not self.sched.stopped:
                retry += 1
                attempt["outcome"] = "retried"
                self._record(attempt, item_attempt_done=False)
                await asyncio.sleep(backoff.delay(retry, retry_after=error.retry_after))
                await self.writer.storage_available()
                continue
            return _Call(attempt, None, error)  # transient error, retries exhausted: the item attempt failed

    async def _fall_back(
        self, route: Route, reason: str, error: ProviderError, attempt: dict[str, Any]
    ) -> bool:
        """Move the job to the next model of its chain (once per route across the slots); the failed call is
        recorded (billed, not an item attempt). False when no later model could be resolved."""
        if self.sched.stopped or (not self.ctx.chain.has_next() and self.ctx.chain.current is route):
            return False
        moved = await self.ctx.chain.advance(route, reason, str(error))
        if moved is None:
            return False
        attempt["outcome"] = "fallback"
        self._record(attempt, item_attempt_done=False)
        await self.writer.storage_available()
        return not self.sched.stopped

    async def _call(
        self, t: _Target, route: Route, messages: list[Message], *, lookup: bool
    ) -> tuple[ChatResult | None, ProviderError | None, datetime, float]:
        """One provider call through the fair limiter (fair between users, then between a user's jobs), counted
        (a call abandoned by a cancel is not). The limiter hears how it went (first token, answer, or the error
        leaving the block) to adapt the provider's limit. With the job's cache on ``use`` the first call of an item
        attempt is looked up first: a hit is answered without a call (cost 0, tokens 0)."""
        sched, st = self.sched, self.st
        started_at = self.ctx.clock()
        t0 = time.perf_counter()
        result: ChatResult | None = None
        error: ProviderError | None = None
        request = stage_shape(route.shape, t.stage).request(messages, seed=t.seed)
        key = self._cache_key(route, request)
        t.cache, t.saved = None, None
        if key is not None and lookup and self.ctx.cache_mode == "use":
            hit = await self._lookup(t, key)
            if hit is not None:
                return hit, None, started_at, (time.perf_counter() - t0) * 1000.0
        sched.call_started()
        try:
            async with route.limiter.slot(
                self.job.job_id, user=self.job.user_id, streamed=request.stream
            ) as permit:
                with first_token_listener(permit.first_token), self.provider_call():
                    result = await route.provider.chat(request)
                permit.succeeded(result.first_token_ms)
        except ProviderError as exc:
            error = exc
        except asyncio.CancelledError:
            sched.call_abandoned()
            raise
        latency_ms = (time.perf_counter() - t0) * 1000.0
        sched.call_finished(result.cost_usd if result else 0.0)
        if result is not None and key is not None and self.ctx.cache is not None:
            self.ctx.cache.put(self.job.user_id, key, _answer(result))
        t.usage.add(result)
        st.calls += 1
        if result is not None:
            st.prompt_tokens += result.prompt_tokens
            st.completion_tokens += result.completion_tokens
        return result, error, started_at, latency_ms

    @contextlib.contextmanager
    def provider_call(self) -> Iterator[None]:
        """Marks the current task as having a call at the provider (what a cancel awaits, stopping.py).
        A permit granted after the job was cancelled or failed is given back unused: no new call then."""
        if self.sched.stop_reason in (STOP_CANCELLED, STOP_FATAL):
            raise asyncio.CancelledError  # abandoned before the call: nothing to bill
        task = asyncio.current_task()
        if task is None:
            yield
            return
        self.at_provider.add(task)
        try:
            yield
        finally:
            self.at_provider.discard(task)

    # --- response cache -----------------------------------------------------------------------------
    def _next_seed(self, target: int) -> int:
        """The seed of the target's next item attempt, numbered across its slots: a target rejected and
        regenerated by a new slot is asked with new seeds (else its cached refused answers would come back)."""
        n = self.st.target_attempts.get(target, 0) + 1
        self.st.target_attempts[target] = n
        return item_seed(self.ctx.seed, target, n)

    def _cache_key(self, route: Route, request: ChatRequest) -> str | None:
        """The request's cache key, None when the job does not use the cache."""
        if self.ctx.cache is None or self.ctx.cache_mode == "off":
            return None
        body = route.provider.build_request_body(request)
        return cache_key(route.provider_name, body, request.seed or 0)

    async def _lookup(self, t: _Target, key: str) -> ChatResult | None:
        """The cached answer as a free result (its original cost is kept as the saving), or None (a miss)."""
        assert self.ctx.cache is not None
        hit = self.ctx.prefetched.pop(key, None) or await self.ctx.cache.get(self.job.user_id, key)
        if hit is None:
            t.cache = "miss"
            self.st.cache_misses += 1
            return None
        t.cache, t.saved = "hit", hit
        self.st.cache_hits += 1
        self.st.calls += 1
        t.usage.calls += 1
        return ChatResult(
            text=hit.text,
            finish_reason=hit.finish_reason,
            model=hit.model,
            provider=hit.provider,
            cost_reported=True,
        )

    @staticmethod
    def _mark_cache(attempt: dict[str, Any], t: _Target) -> None:
        """Record on the attempt whether it came from the cache (and what that saved) or missed it."""
        attempt["cached"] = t.cache == "hit"
        attempt["cache_hit"] = 1 if t.cache == "hit" else 0
        attempt["cache_miss"] = 1 if t.cache == "miss" else 0
        if t.saved is not None:
            attempt["saved_cost_usd"] = t.saved.cost_usd
            attempt["saved_tokens"] = t.saved.prompt_tokens + t.saved.completion_tokens

    def _judge(self, t: _Target, call: _Call) -> Verdict:
        """Evaluate the answer (synchronous from here to the submit: atomic w.r.t. the other slots)."""
        if call.result is not None:
            t.last_text = call.result.text
            t.last_finish = call.result.finish_reason
        verdict = evaluate(
            call.result.text if call.result is not None else None,
            self.ctx.rules,
            item_attempt=t.item_attempt,
            hashes=self.st.hashes,
            unique=self.st.unique,
            provider_error=str(call.error) if call.error is not None else None,
        )
        if self.near is not None and t.stage is None:
            verdict = self.near.check(
                verdict, item_attempt=t.item_attempt, max_attempts=self.ctx.rules.max_attempts
            )
        call.attempt["outcome"] = verdict.outcome
        call.attempt["errors"] = error_summary(verdict.errors, 5)
        chain = self.ctx.chain
        if self.sched.attempt_outcome(verdict.outcome == "valid", can_fall_back=chain.has_next()):
            self._breaker_fallback = asyncio.ensure_future(
                chain.advance(chain.current, fallback.BREAKER_OPEN, "most recent item attempts failed")
            )
        return verdict

    async def _conclude(
        self, t: _Target, attempt: dict[str, Any], verdict: Verdict, judged: dict[str, Any] | None = None
    ) -> None:
        """Accept (reserving the next dense index) or reject the target. With an LLM judge an accepted answer
        goes to the judge first (judging.py), which comes back here with its verdict (``judged``)."""
        st, sched = self.st, self.sched
        if verdict.action == "accept" and judged is None and self.judge is not None:
            self.judge.hand_off(t, attempt, verdict)
            return
        if verdict.action == "accept":
            index = st.next_index
            st.next_index += 1
            st.hashes.add(verdict.digest)
            if self.near is not None and judged is None:
                self.near.add(f"s{t.plan.slot}", verdict.value)
            if self.ctx.rules.rules.unique:
                st.unique.commit(verdict.value, self.ctx.rules.rules)
            self.stage_memory.commit(verdict.value, self.ctx.rules)  # the stages' own `unique` values
            sched.slot_succeeded(t.plan.slot)
            self.rate.record(time.monotonic())
            done = ItemOutcome(t.plan, t.item_attempt, t.usage, self.ctx.clock())
            op = accepted_op(
                self.job,
                self.ctx.events,
                attempt,
                done,
                index=index,
                value=verdict.value,
                digest=verdict.digest,
                task_index=t.rendered.task_index,
                inputs=self._inputs(t),
                provenance=item_provenance(
                    t.rendered, attempt, t.item_attempt, dataset_id=self._dataset_id, judge=judged
                ),
                judge=judged,
            )
        else:
            number = st.next_rejected
            st.next_rejected += 1
            sched.slot_rejected(t.plan.slot)
            done = ItemOutcome(t.plan, t.item_attempt, t.usage, self.ctx.clock())
            op = rejected_op(
                self.job,
                self.ctx.events,
                attempt,
                done,
                number=number,
                reason=verdict.reason,
                errors=verdict.errors,
                last_text=t.last_text,
                inputs=self._inputs(t),
                judge=judged,
                stage=verdict.stage,
                provenance=item_provenance(
                    t.rendered, attempt, t.item_attempt, dataset_id=self._dataset_id, judge=judged
                ),
            )
        await self._submit(op, free=t.cache == "hit")

    @property
    def _dataset_id(self) -> str | None:
        return self.ctx.variables.dataset_id if self.ctx.variables is not None else None

    def _inputs(self, t: _Target) -> dict[str, Any]:
        return item_inputs(self.ctx.plan, t.plan.target, self.ctx.request.variables)

    # --- writes -----------------------------------------------------------------------------------------
    async def _submit(self, op: Op, *, free: bool = False) -> None:
        """Queue a write without waiting for it to be durable (nothing depends on it: after a crash the job
        resumes from what is durable and regenerates the rest); wait only when the writer falls behind. An answer
        from the cache (``free``) costs nothing to lose in a crash, so it may queue 16× further: the writer folds
        larger batches and a re-run from the cache is not paced by one database round trip per few dozen items."""
        fut = self.writer.submit(op)
        if self.writer.backlog > self._max_backlog * (FREE_BACKLOG_FACTOR if free else 1):
            await fut

    def _record(self, attempt: dict[str, Any], *, item_attempt_done: bool) -> None:
        self.writer.submit(attempt_op(attempt, item_attempt_done=item_attempt_done))


def _answer(result: ChatResult) -> CachedAnswer:
    return CachedAnswer(
        text=result.text,
        finish_reason=result.finish_reason,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        cost_usd=result.cost_usd,
        model=result.model,
        provider=result.provider,
    )
