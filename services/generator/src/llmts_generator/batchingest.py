"""How a batch job judges one answered (or failed) line: its attempt, then accept / repair / reject through
:func:`~llmts_generator.domain.evaluation.evaluate` and the records of a sync slot, or the line is sent again
(expired, transient error). A mixin of :class:`~llmts_generator.batchdriver.BatchDriver`, which owns the state."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from llmts_generator.domain.batching import LineRef, OpenSlot
from llmts_generator.domain.evaluation import Verdict, evaluate
from llmts_generator.domain.failures import fatal_code, fatal_reason
from llmts_generator.domain.repair import Message, error_summary, repair_messages, retry_fresh
from llmts_generator.domain.requests import RenderedItem
from llmts_generator.domain.scheduling import Scheduler, SlotPlan
from llmts_generator.domain.tasks import item_inputs
from llmts_generator.folding import Op
from llmts_generator.itemdraws import dataset_of, item_provenance
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
from llmts_generator.slots import SlotContext
from llmts_generator.writer import JobWriter
from llmts_providers import ProviderError
from llmts_providers.batches import BatchLineResult
from llmts_providers.errors import ProviderUnavailable

if TYPE_CHECKING:
    from llmts_generator.batchjob import BatchJobRunner
    from llmts_generator.chain import Route

MAX_RESENDS = 10  # an expired line is sent again at most this often (then it counts as a failed item attempt)


class LineIngest:
    """The ingestion half of the batch driver (its state is the driver's)."""

    r: BatchJobRunner
    sched: Scheduler
    ctx: SlotContext
    st: JobState
    job: JobRef
    writer: JobWriter
    route: Route
    open: dict[int, OpenSlot]
    usage: dict[int, SlotUsage]
    rendered: dict[int, RenderedItem]
    last_text: dict[int, tuple[str | None, str | None]]
    stored: set[str]
    _last_write: asyncio.Future[None] | None

    def _messages(self, line: LineRef) -> list[Message]:
        s = self.open[line.slot]
        return s.messages if s.messages is not None else self.rendered[line.target].messages

    def _ingest_line(self, s: OpenSlot, line: LineRef, found: BatchLineResult, batch_id: str | None) -> None:
        """One answered (or failed) line: its attempt, then accept / repair / reject or send it again."""
        s.awaiting = None
        result, error = found.result, found.error
        self.sched.call_finished(result.cost_usd if result is not None else 0.0)
        self.usage[s.slot].add(result)
        self.st.calls += 1
        if result is not None:
            self.st.prompt_tokens += result.prompt_tokens
            self.st.completion_tokens += result.completion_tokens
        kind = "first" if line.item_attempt == 1 else ("retry" if s.retries else "repair")
        call = CallRecord(
            line.call,
            line.item_attempt,
            kind,
            len(self._messages(line)),
            result,
            error,
            self.ctx.clock(),
            0.0,
        )
        plan = SlotPlan(s.slot, s.target)
        attempt = attempt_doc(
            self.job, plan, call, model_id=self.route.shape.model_id, provider=self.route.provider_name
        )
        attempt["mode"] = "batch" if batch_id is not None else "sync"
        attempt["batch_id"] = batch_id
        self.stored.add(str(attempt["_id"]))
        if error is not None and self._line_failed(s, error, attempt):
            return
        verdict = evaluate(
            result.text if result is not None else None,
            self.ctx.rules,
            item_attempt=line.item_attempt,
            hashes=self.st.hashes,
            unique=self.st.unique,
            provider_error=str(error) if error is not None else None,
        )
        attempt["outcome"] = verdict.outcome
        attempt["errors"] = error_summary(verdict.errors, 5)
        self.sched.attempt_outcome(verdict.outcome == "valid")
        if result is not None:
            self.last_text[s.slot] = (result.text, result.finish_reason)
        if verdict.action == "repair":
            self._write(attempt_op(attempt, item_attempt_done=True))
            s.messages = self._repair(s, verdict)
            return
        self._conclude(s, attempt, verdict)

    def _line_failed(self, s: OpenSlot, error: ProviderError, attempt: dict[str, Any]) -> bool:
        """A failed line: True when handled here (the job fails, or the line is sent again); False when it counts
        as a failed item attempt (judged as a provider error)."""
        code = fatal_code(error)
        if code is not None:
            attempt["outcome"] = "fatal"
            self._write(attempt_op(attempt, item_attempt_done=True))
            self.sched.fail(code, fatal_reason(code, error))
            return True
        expired = isinstance(error, ProviderUnavailable) and "batch_expired" in str(error)
        limit = MAX_RESENDS if expired else self.ctx.backoff.max_retries
        if error.retryable and s.retries < limit:
            s.retries += 1
            s.resend = True
            attempt["outcome"] = "expired" if expired else "retried"
            self._write(attempt_op(attempt, item_attempt_done=False))
            return True
        return False

    def _write(self, op: Op) -> None:
        self._last_write = self.writer.submit(op)

    def _repair(self, s: OpenSlot, verdict: Verdict) -> list[Message] | None:
        text, finish = self.last_text.get(s.slot, (None, None))
        if verdict.outcome == "invalid" and retry_fresh(finish, verdict.errors):
            return None
        rendered = self.rendered[s.target]
        return repair_messages(
            rendered.system,
            rendered.user,
            text,
            verdict.errors,
            output_format=self.ctx.rules.output_format,
            duplicate=verdict.outcome == "duplicate",
        )

    def _conclude(self, s: OpenSlot, attempt: dict[str, Any], verdict: Verdict) -> None:
        st, sched, ctx = self.st, self.sched, self.ctx
        plan = SlotPlan(s.slot, s.target)
        done = ItemOutcome(plan, s.item_attempt, self.usage[s.slot], ctx.clock())
        inputs = item_inputs(ctx.plan, s.target, ctx.request.variables)
        rendered = self.rendered.get(s.target)
        made = (
            item_provenance(rendered, attempt, s.item_attempt, dataset_id=dataset_of(ctx.variables))
            if rendered is not None
            else None
        )
        if verdict.action == "accept":
            index = st.next_index
            st.next_index += 1
            st.hashes.add(verdict.digest)
            if ctx.rules.rules.unique:
                st.unique.commit(verdict.value, ctx.rules.rules)
            sched.slot_succeeded(s.slot)
            self.r.rate.record(time.monotonic())
            task_index = rendered.task_index if rendered is not None else 0
            op = accepted_op(
                self.job,
                ctx.events,
                attempt,
                done,
                index=index,
                value=verdict.value,
                digest=verdict.digest,
                task_index=task_index,
                inputs=inputs,
                provenance=made,
            )
        else:
            number = st.next_rejected
            st.next_rejected += 1
            sched.slot_rejected(s.slot)  # its target goes back to the queue: a new slot tops it up
            op = rejected_op(
                self.job,
                ctx.events,
                attempt,
                done,
                number=number,
                reason=verdict.reason,
                errors=verdict.errors,
                last_text=self.last_text.get(s.slot, (None, None))[0],
                inputs=inputs,
                provenance=made,
            )
        self._write(op)
        self.open.pop(s.slot, None)
        self.last_text.pop(s.slot, None)
