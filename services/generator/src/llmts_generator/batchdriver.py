"""The driver of a batch-mode job (see :mod:`llmts_generator.batchjob`): plans lines, submits and persists batches,
polls them, ingests their results through the same evaluate → accept / repair / reject path as a sync slot."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from llmts_common.contracts.events import BatchProgress
from llmts_generator.batchingest import LineIngest
from llmts_generator.domain.batching import (
    SUBMISSION_TAG,
    LineRef,
    OpenSlot,
    batch_record,
    custom_id,
    pending_submission,
    rebuild,
    record_key,
    unsupported_feature,
)
from llmts_generator.domain.caching import item_seed
from llmts_generator.domain.failures import fatal_code, fatal_reason
from llmts_generator.domain.ports import attempt_id
from llmts_generator.domain.requests import RenderedItem, render_items
from llmts_generator.domain.scheduling import Scheduler
from llmts_generator.folding import Op
from llmts_generator.itemdraws import draw_items
from llmts_generator.records import (
    SlotUsage,
)
from llmts_generator.slots import SlotContext
from llmts_providers import ChatResult, ProviderError
from llmts_providers.batches import BatchLineResult, BatchState

if TYPE_CHECKING:
    from llmts_generator.batchjob import BatchJobRunner

log = logging.getLogger("llmts.generator.batch")

RENDER_CHUNK = 64  # targets per render call
ALL_ROWS = 10_000_000


class BatchDriver(LineIngest):
    """The lines, batches and open slots of one batch job while this process runs it."""

    def __init__(self, runner: BatchJobRunner, sched: Scheduler, ctx: SlotContext) -> None:
        assert runner.writer is not None
        self.r = runner
        self.sched = sched
        self.ctx = ctx
        self.st = runner.state
        self.job = runner.job
        self.writer = runner.writer
        self.route = ctx.chain.current
        provider = self.route.provider
        self.api = runner.batch_config.api_for(provider)
        self.open: dict[int, OpenSlot] = {}
        self.usage: dict[int, SlotUsage] = {}
        self.outstanding: dict[str, list[LineRef]] = {}
        self.states: dict[str, BatchState] = {}
        self.rendered: dict[int, RenderedItem] = {}
        self.last_text: dict[int, tuple[str | None, str | None]] = {}  # slot → (answer, finish reason)
        self.stored: set[str] = set()
        self.submitted = len(runner.doc.get("batches") or {})
        self.status = "none"
        self._last_write: asyncio.Future[None] | None = None

    # --- the loop ---------------------------------------------------------------------------------------
    async def run(self) -> bool:
        """Work the job until every target is done or it stops; False when paused (lease released)."""
        if self.api is None:
            self.sched.fail(
                "batch_unsupported",
                f"the provider {self.route.provider_name!r} has no Batch API (only openai-compatible has one)",
            )
            return True
        feature = unsupported_feature(self.ctx.request)
        if feature is not None:
            self.sched.fail("batch_unsupported", f"mode 'batch' does not run {feature}: use mode 'sync'")
            return True
        self.sched.concurrency = max(self.sched.concurrency, self.sched.requested)  # every target at once
        await self._resume()
        delay = self.r.batch_config.poll.initial_s
        while True:
            stop = self.r.stopping()
            if stop == "pause":
                return False
            if stop == "cancel" or (self.sched.stopped and self.outstanding):
                if stop == "cancel":
                    self.sched.cancel()
                await self._wind_down()
                return True
            if not self.outstanding:
                lines = await self._plan()
                if not lines:
                    self._abandon_open()
                    return True
                if self.r.request.batch_fallback == "sync" and self.submitted > 0:
                    await self._run_sync(lines)
                    continue
                delay = self.r.batch_config.poll.initial_s
                size = self.r.batch_config.max_lines
                sent = [await self._submit(lines[i : i + size]) for i in range(0, len(lines), size)]
                if not any(sent):
                    await self.r.idle(self.r.batch_config.poll.max_s / 4)  # the provider is away: later
                    continue
            progressed = await self._poll_once()
            if self.outstanding:
                delay = self.r.batch_config.poll.next(delay, progressed)
                await self.r.idle(delay)

    async def _resume(self) -> None:
        """A resumed job: adopt its open slots and the batches still at the provider (nothing is resubmitted)."""
        batches = await self._recover_pending(dict(self.r.doc.get("batches") or {}))
        pending_slots = [LineRef.unpack(raw).slot + 1 for raw in self._pending_lines()]
        self.sched.next_slot = max([self.sched.next_slot, *pending_slots])  # a custom id is never used twice
        if not batches and self.st.calls == 0:
            return
        repo, job_id = self.r.deps.repo, self.job.job_id
        attempts = await repo.attempts_of(job_id, limit=ALL_ROWS)
        ended = {int(d["slot"]) for d in await repo.job_items(job_id) if d.get("slot") is not None}
        found = rebuild(job_id, attempts, ended, batches)
        self.stored = found.stored
        pending = set(self.sched.pending)
        for s in found.open.values():
            if s.target not in pending:
                continue
            pending.discard(s.target)
            self.sched.pending.remove(s.target)
            self.sched.in_flight[s.slot] = s.target
            self.open[s.slot] = s
            self.usage[s.slot] = SlotUsage()
        for a in attempts:
            if int(a["slot"]) in self.open:
                _add_stored(self.usage[int(a["slot"])], a)
        await self._render({s.target for s in self.open.values()})
        self.sched.next_slot = max(self.sched.next_slot, found.next_slot)
        self.outstanding = found.pending_batches
        for s in self.open.values():
            if s.awaiting is not None:
                self.sched.call_started()
        log.info(
            "batch job %s resumed: %d open slot(s), %d batch(es) at the provider",
            job_id,
            len(self.open),
            len(self.outstanding),
        )

    def _pending_lines(self) -> list[Any]:
        return list((self.r.doc.get("batch_pending") or {}).get("lines") or [])

    async def _recover_pending(self, batches: dict[str, Any]) -> dict[str, Any]:
        """A submission the previous owner started but did not record: the batch the provider created meanwhile
        (found by its tag) is recorded now and adopted like any other."""
        pending = self.r.doc.get("batch_pending")
        if not pending or self.api is None:
            return batches
        token = str(pending.get("token"))
        if any(record.get("submission") == token for record in batches.values()):
            return batches
        state = await self._provider("find", functools.partial(self.api.find, SUBMISSION_TAG, token))
        if state is None:
            return batches  # never created: its lines are planned again (under new slot numbers)
        lines = [LineRef.unpack(raw) for raw in self._pending_lines()]
        record = batch_record(
            state.id, lines, round_no=self.job.round, submitted_at=pending.get("at"), submission=token
        )
        await self.writer.submit(Op(set={f"batches.{record_key(state.id)}": record, "batch_pending": None}))
        log.info("batch job %s: batch %s found by its tag and adopted", self.job.job_id, state.id)
        return {**batches, record_key(state.id): record}

    # --- planning and submitting ------------------------------------------------------------------------
    async def _plan(self) -> list[LineRef]:
        """The next lines: open slots that need one, then new slots for undone targets."""
        sched = self.sched
        lines: list[LineRef] = []
        for s in list(self.open.values()):
            if s.awaiting is not None:
                continue
            if sched.stopped or (not s.resend and not sched.begin_attempt()):
                self._drop(s.slot)
                continue
            lines.append(self._line_of(s))
        while sched.can_launch() and sched.begin_attempt():
            plan = sched.launch()
            s = self.open[plan.slot] = OpenSlot(plan.slot, plan.target)
            self.usage[plan.slot] = SlotUsage()
            lines.append(self._line_of(s))
        await self._render({line.target for line in lines if self.open[line.slot].messages is None})
        if sched.fatal is not None:  # failed while drawing the items' variables: nothing is sent
            self._abandon_open()
            return []
        return lines

    def _line_of(self, s: OpenSlot) -> LineRef:
        """The slot's next line, counted in flight from now (the cost cap sees every line planned before it)."""
        line = s.next_line()
        s.awaiting = custom_id(self.job.job_id, line.slot, line.call)
        self.sched.call_started()
        return line

    async def _render(self, targets: set[int]) -> None:
        wanted = sorted(t for t in targets if t not in self.rendered)
        ctx = self.ctx
        for start in range(0, len(wanted), RENDER_CHUNK):
            chunk = wanted[start : start + RENDER_CHUNK]
            draws = await draw_items(ctx.variables, chunk, self.sched)  # seed rows, sampled values (issue 18)
            if draws is None:
                return  # the job failed on its seed dataset or samplers (sched.fail): _plan sends nothing
            for item in await render_items(
                ctx.renderer,
                ctx.request,
                ctx.plan,
                chunk,
                job_id=self.job.job_id,
                now=ctx.clock(),
                draws=draws,
            ):
                self.rendered[item.target] = item

    def _line_body(self, line: LineRef) -> dict[str, Any]:
        assert self.api is not None
        seed = item_seed(self.ctx.seed, line.target, line.item_attempt)
        request = self.route.shape.request(self._messages(line), seed=seed)
        return self.api.line(custom_id(self.job.job_id, line.slot, line.call), request)

    async def _submit(self, lines: list[LineRef]) -> bool:
        """Upload and create one batch, then persist its id and lines before anything else."""
        assert self.api is not None
        bodies = [self._line_body(line) for line in lines]
        token = uuid.uuid4().hex
        pending = pending_submission(token, lines, self.ctx.clock())
        await self.writer.submit(Op(set={"batch_pending": pending}))
        tags = {"job_id": self.job.job_id, SUBMISSION_TAG: token}
        state = await self._provider("submit", functools.partial(self.api.submit, bodies, metadata=tags))
        if (
            state is None
        ):  # a failed create may have created it all the same (a timeout after the provider took it)
            state = await self._provider("find", functools.partial(self.api.find, SUBMISSION_TAG, token))
        if state is None:
            for line in lines:
                s = self.open[line.slot]
                s.awaiting, s.resend = None, True  # nothing was submitted: the same lines next time
                self.sched.call_abandoned()
            return False
        record = batch_record(
            state.id, lines, round_no=self.job.round, submitted_at=self.ctx.clock(), submission=token
        )
        await self.writer.submit(Op(set={f"batches.{record_key(state.id)}": record, "batch_pending": None}))
        self.outstanding[state.id] = lines
        self.states[state.id] = state
        self.submitted += 1
        self.status = state.status
        log.info("batch job %s: batch %s submitted with %d line(s)", self.job.job_id, state.id, len(lines))
        return True

    async def _provider(self, what: str, call: Callable[[], Any]) -> Any:
        """A Batch API call; a fatal error fails the job, a transient one is logged (None: try again later)."""
        try:
            return await call()
        except ProviderError as exc:
            code = fatal_code(exc)
            if code is not None:
                self.sched.fail(code, fatal_reason(code, exc))
            log.warning("batch job %s: %s failed: %s", self.job.job_id, what, exc)
            return None

    # --- polling and ingesting --------------------------------------------------------------------------
    async def _poll_once(self) -> bool:
        """Ask the provider about each outstanding batch; ingest those that ended. True when lines progressed."""
        assert self.api is not None
        api = self.api
        progressed = False
        for batch_id in list(self.outstanding):
            state: BatchState | None = await self._provider("poll", functools.partial(api.get, batch_id))
            if state is None:
                continue
            before = self.states.get(batch_id)
            self.states[batch_id] = state
            self.status = state.status
            if before is None or (before.status, before.completed, before.failed) != (
                state.status,
                state.completed,
                state.failed,
            ):
                progressed = True
            if state.terminal:
                await self._ingest(batch_id, state)
        if progressed:
            await self._publish_progress()
        return progressed

    async def _publish_progress(self) -> None:
        event = self.r.progress_event(force=True)
        if event is None:
            return
        try:
            await self.r.deps.events.publish(event)
        except Exception as exc:  # progress is informational: the next one says the same and more
            log.warning("batch job %s: progress not published: %s", self.job.job_id, exc)

    async def _ingest(self, batch_id: str, state: BatchState) -> None:
        """Store and judge every line of an ended batch, then mark it ingested (once those writes are durable)."""
        assert self.api is not None
        api = self.api
        results: list[BatchLineResult] | None = await self._provider("results", lambda: api.results(state))
        if results is None:
            return  # read again at the next poll
        by_id = {r.custom_id: r for r in results}
        for line in self.outstanding[batch_id]:
            cid = custom_id(self.job.job_id, line.slot, line.call)
            s = self.open.get(line.slot)
            if attempt_id(self.job.job_id, line.slot, line.call) in self.stored or s is None:
                continue
            if s.awaiting != cid:
                continue
            found = by_id.get(cid)
            if found is None:
                self._not_run(s, state)
                continue
            self._ingest_line(s, line, found, batch_id)
        if self._last_write is not None:
            await self._last_write  # everything above is durable: only now may the batch be marked ingested
        marker: dict[str, Any] = {f"batches.{record_key(batch_id)}.ingested": True}
        marker[f"batches.{record_key(batch_id)}.status"] = state.status
        await self.writer.submit(Op(set=marker))
        del self.outstanding[batch_id]
        log.info(
            "batch job %s: batch %s %s, %d line(s) read", self.job.job_id, batch_id, state.status, len(by_id)
        )

    def _not_run(self, s: OpenSlot, state: BatchState) -> None:
        """A line in neither file: the batch was cancelled before it ran, or it failed validation as a whole."""
        s.awaiting = None
        s.resend = True
        self.sched.call_abandoned()
        if state.status == "failed":
            reason = "; ".join(state.errors)[:900] or "the batch failed validation"
            self.sched.fail("batch_failed", f"the provider refused the batch: {reason}")

    # --- sync fallback, stopping --------------------------------------------------------------------------
    async def _run_sync(self, lines: list[LineRef]) -> None:
        """``batch_fallback: "sync"``: the lines after the first batch are ordinary calls (sync price)."""
        limit = asyncio.Semaphore(self.r.request.concurrency)
        route = self.route

        async def one(line: LineRef) -> None:
            s = self.open[line.slot]
            cid = custom_id(self.job.job_id, line.slot, line.call)
            request = route.shape.request(
                self._messages(line), seed=item_seed(self.ctx.seed, line.target, line.item_attempt)
            ).model_copy(update={"stream": False})
            result: ChatResult | None = None
            error: ProviderError | None = None
            async with limit, route.limiter.slot(self.job.job_id, user=self.job.user_id) as permit:
                try:
                    result = await route.provider.chat(request)
                    permit.succeeded(result.first_token_ms)
                except ProviderError as exc:
                    error = exc
            self._ingest_line(s, line, BatchLineResult(cid, result, error), None)

        await asyncio.gather(*(one(line) for line in lines))

    async def _wind_down(self) -> None:
        """Cancel the batches still at the provider and keep what they had answered (paid for), then give up the
        open slots."""
        assert self.api is not None
        api = self.api
        for batch_id in list(self.outstanding):
            state = self.states.get(batch_id)
            if state is None or not state.terminal:
                await self._provider("cancel", functools.partial(api.cancel, batch_id))
        deadline = time.monotonic() + self.r.batch_config.cancel_wait_s
        while self.outstanding and time.monotonic() < deadline and self.r.stopping() != "pause":
            await self._poll_once()
            if self.outstanding:
                await asyncio.sleep(min(1.0, self.r.batch_config.poll.initial_s))
        self._abandon_open()

    def _abandon_open(self) -> None:
        for slot in list(self.open):
            self._drop(slot)

    def _drop(self, slot: int) -> None:
        s = self.open.pop(slot)
        if s.awaiting is not None:
            self.sched.call_abandoned()
        self.sched.slot_abandoned(slot)

    def progress(self) -> BatchProgress:
        states = [self.states[b] for b in self.outstanding if b in self.states]
        return BatchProgress(
            status=self.status,
            batches=self.submitted,
            outstanding=len(self.outstanding),
            lines_total=sum(len(lines) for lines in self.outstanding.values()),
            lines_done=sum(s.completed + s.failed for s in states),
        )


def _add_stored(usage: SlotUsage, a: Mapping[str, Any]) -> None:
    """A stored attempt's usage (a resumed slot's item usage counts its earlier calls)."""
    usage.calls += 1
    usage.prompt_tokens += int(a.get("prompt_tokens", 0))
    usage.completion_tokens += int(a.get("completion_tokens", 0))
    usage.cost_usd += float(a.get("cost_usd", 0.0))
