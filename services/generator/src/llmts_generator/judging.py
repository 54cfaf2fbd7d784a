"""The LLM judge of a running job (issue 18 #4), pipelined behind the slots.

A slot whose answer passed validation (and dedup, and near-duplicate control) does not wait for the judge: it hands
the item over (:meth:`JudgeStage.hand_off` — the generation attempt is written then, for billing; the target moves
to the scheduler's ``judging`` set, still undone; its content hash and text are reserved so an identical or near
identical answer meanwhile is a duplicate, and so are its ``unique`` rule values) and goes on to its next target. The judge task scores the item under the
judge's own concurrency (``judge.concurrency``, default the job's) through the judge model's provider limiter, then:

- **accept** passes → the item is accepted (the next dense index) with the verdict stored on it (``judge``:
  ``{scores, reason, model, calls, usage}``) and in its ``ItemGenerated``;
- **accept** fails → the item is rejected (reason ``judge``, the verdict on the rejected item) and its target goes
  back to the queue: a new slot regenerates it (new item seeds), so the job still ends with exactly N items that
  passed;
- an answer that cannot be read (not JSON, a score missing or out of range) is asked again with the error, at most
  :data:`MAX_JUDGE_ANSWERS` answers in all; a call that fails is retried with the job's backoff (a fatal provider
  error fails the job, as for generation). **Decision: an item the judge could not score after that is rejected
  (reason ``judge``, ``unreadable``) and regenerated — never accepted unjudged.**

Every judge call is an attempt (``kind: "judge"``, outcome ``judge_accept`` / ``judge_reject`` /
``judge_unreadable`` / ``judge_error``, never an item attempt) counted in the job's calls, tokens, cost and
``max_cost_usd``, and separately under the job's ``judge`` counters (progress and terminal events: ``judge_usage``).
Crash-only: an item judged but not written is regenerated on resume; its attempts stay billed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from llmts_common.contracts import GenerationRequested
from llmts_common.contracts.common_models import JudgeUsage
from llmts_generator.domain.evaluation import Verdict
from llmts_generator.domain.failures import fatal_code, fatal_reason
from llmts_generator.domain.limiter import FairLimiter
from llmts_generator.domain.nearcontrol import NearDupControl
from llmts_generator.domain.repair import Message
from llmts_generator.domain.requests import RequestShape
from llmts_generator.domain.scheduling import STOP_CANCELLED, STOP_FATAL, STOP_MAX_COST
from llmts_generator.records import CallRecord, attempt_doc, attempt_op
from llmts_providers import ChatResult, Provider, ProviderError
from llmts_templating.judge import JudgeError, JudgeRules

if TYPE_CHECKING:
    from llmts_generator.slots import SlotWork, _Target

MAX_JUDGE_ANSWERS = 3  # answers asked of the judge per item (the first + repairs of unreadable ones)
ProviderResolver = Callable[[str, str | None], Awaitable[tuple[Provider, str]]]
Spawn = Callable[[Coroutine[Any, Any, None], int], None]


class Resolvers(Protocol):
    """How a job finds a model's provider and its limiter (the runner's deps)."""

    @property
    def resolve_provider(self) -> ProviderResolver: ...

    @property
    def limiter_for(self) -> Callable[[str], FairLimiter]: ...


class JudgeUnavailable(Exception):
    """The job's judge cannot be used: an invalid spec or a judge model no provider serves."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason[:1000]


@dataclass
class JudgeTotals:
    """The judge's calls, tokens and cost so far (a resumed job starts from its stored attempts)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    @classmethod
    def of(cls, totals: Mapping[str, Any]) -> JudgeTotals:
        return cls(
            int(totals.get("judge_calls", 0) or 0),
            int(totals.get("judge_prompt_tokens", 0) or 0),
            int(totals.get("judge_completion_tokens", 0) or 0),
            float(totals.get("judge_cost_usd", 0.0) or 0.0),
        )

    def usage(self) -> JudgeUsage:
        return JudgeUsage(
            calls=self.calls,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cost_usd=round(self.cost_usd, 10),
        )


@dataclass
class JobJudge:
    """The resolved judge of a job: rules, model route and its own concurrency."""

    rules: JudgeRules
    provider: Provider
    provider_name: str
    shape: RequestShape
    limiter: FairLimiter
    concurrency: int
    totals: JudgeTotals = field(default_factory=JudgeTotals)

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(self.concurrency)

    @staticmethod
    def usage_of(judge: JobJudge | None) -> JudgeUsage | None:
        return judge.totals.usage() if judge is not None else None

    @classmethod
    async def start(
        cls, req: GenerationRequested, deps: Resolvers, totals: Mapping[str, Any]
    ) -> JobJudge | None:
        """The job's judge (None without one); :class:`JudgeUnavailable` when it cannot be used. ``totals``: the
        judge's stored totals of a resumed job."""
        spec = req.template.judge
        if spec is None:
            return None
        try:
            rules = JudgeRules.build(spec.rubric, spec.scores, spec.accept)
        except JudgeError as exc:
            raise JudgeUnavailable("invalid_template", f"{exc.path}: {exc.message}") from None
        try:
            provider, model_id = await deps.resolve_provider(spec.model.id, spec.model.provider)
        except Exception as exc:
            raise JudgeUnavailable("judge_model_not_found", f"judge model {spec.model.id}: {exc}") from None
        name = str(getattr(provider, "name", spec.model.provider or "openrouter"))
        shape = RequestShape(model_id, 0.0, spec.max_tokens, rules.schema(), True)
        concurrency = spec.concurrency or req.concurrency
        return cls(rules, provider, name, shape, deps.limiter_for(name), concurrency, JudgeTotals.of(totals))


def attach_quality(work: SlotWork, judge: JobJudge | None, spawn: Spawn) -> None:
    """Give a job's slots their near-duplicate control (rebuilt from the stored items of a resumed job) and the
    judge stage."""
    work.near = NearDupControl.of(work.ctx.request, accepted=work.st.accepted_docs)
    work.judge = JudgeStage(judge, work, spawn) if judge is not None else None


@dataclass
class _Judged:
    """The judge's last attempt on an item and what it decided (``errors`` says why when refused)."""

    attempt: dict[str, Any]
    accepted: bool
    doc: dict[str, Any]
    errors: list[dict[str, Any]]


class JudgeStage:
    """The pipeline step between a slot's accepted answer and the item's write (one per running job)."""

    def __init__(self, judge: JobJudge, work: SlotWork, spawn: Spawn) -> None:
        self.judge = judge
        self.work = work
        self.spawn = spawn

    def hand_off(self, t: _Target, attempt: dict[str, Any], verdict: Verdict) -> None:
        """Synchronous (atomic w.r.t. the other slots): write the generation attempt, free the slot, reserve the
        item's hash and text, start the judge task."""
        w = self.work
        w.writer.submit(attempt_op(attempt, item_attempt_done=True))
        w.sched.slot_to_judge(t.plan.slot)
        w.st.hashes.add(verdict.digest)
        if w.ctx.rules.rules.unique:
            w.st.unique.commit(verdict.value, w.ctx.rules.rules)
        if w.near is not None:
            w.near.add(f"s{t.plan.slot}", verdict.value)
        self.spawn(self._run(t, attempt, verdict), t.plan.slot)

    def _release(self, t: _Target, verdict: Verdict) -> None:
        w = self.work
        w.st.hashes.discard(verdict.digest)
        if w.ctx.rules.rules.unique:
            w.st.unique.release(verdict.value, w.ctx.rules.rules)
        if w.near is not None:
            w.near.remove(f"s{t.plan.slot}")

    async def _run(self, t: _Target, attempt: dict[str, Any], verdict: Verdict) -> None:
        w = self.work
        try:
            judged = await self._verdict(t, verdict.value)
        except BaseException:
            self._release(t, verdict)
            w.sched.slot_abandoned(t.plan.slot)
            raise
        if judged is None:  # the job stops (cancel, fatal error, cost cap): the target stays undone
            self._release(t, verdict)
            w.sched.slot_abandoned(t.plan.slot)
            return
        if judged.accepted:
            await w._conclude(t, attempt, verdict, judged=judged.doc)
            return
        self._release(t, verdict)
        await w._conclude(t, attempt, Verdict("judge", "reject", judged.errors), judged=judged.doc)

    async def _verdict(self, t: _Target, value: Any) -> _Judged | None:
        """Ask the judge (bounded repairs of unreadable answers); None when the job stops meanwhile."""
        rules, w = self.judge.rules, self.work
        messages: list[Message] = [(m["role"], m["content"]) for m in rules.messages(value, self._inputs(t))]
        usage = JudgeTotals()
        async with self.judge.slots:
            for answer_no in range(1, MAX_JUDGE_ANSWERS + 1):
                call = await self._call(t, messages, usage)
                if call is None:
                    return None
                attempt, result = call
                if result is None:
                    errors = attempt.get("errors") or []
                    outcome = "judge_error"
                else:
                    try:
                        read = rules.read(result.text)
                    except JudgeError as exc:
                        errors = [{"path": exc.path, "rule": "judge_unreadable", "message": exc.message}]
                        outcome = "judge_unreadable"
                        messages = [
                            *messages,
                            ("assistant", result.text),
                            (
                                "user",
                                f"Your answer could not be read: {exc.message}. Answer again with only the "
                                "JSON object.",
                            ),
                        ]
                    else:
                        attempt["outcome"] = "judge_accept" if read.accepted else "judge_reject"
                        attempt["judge_scores"] = read.scores
                        w.writer.submit(self._op(attempt))
                        doc = self._doc(read.scores, read.reason, usage)
                        message = f"scores {read.scores} fail accept: {rules.accept}"
                        errors = [] if read.accepted else [{"path": "$", "rule": "judge", "message": message}]
                        return _Judged(attempt, read.accepted, doc, errors)
                attempt["outcome"], attempt["errors"] = outcome, errors
                w.writer.submit(self._op(attempt))
                if answer_no == MAX_JUDGE_ANSWERS:
                    doc = self._doc(None, f"not scored after {answer_no} answers", usage)
                    return _Judged(attempt, False, doc, errors)
        return None  # not reached

    def _inputs(self, t: _Target) -> dict[str, Any]:
        """What the item was asked from, for the judge: its seed row and sampled values (a rubric may ask "in the
        asked tone?"), the task row and the request's variables."""
        inputs = self.work._inputs(t)
        shown = t.rendered.draw.layer()
        shown.update(inputs.get("row") or {})
        shown.update(inputs.get("variables") or {})
        return shown

    def _doc(self, scores: dict[str, float] | None, reason: str, usage: JudgeTotals) -> dict[str, Any]:
        return {
            "scores": scores,
            "reason": reason[:2000],
            "model": {"provider": self.judge.provider_name, "id": self.judge.shape.model_id},
            "calls": usage.calls,
            "usage": usage.usage().model_dump(exclude={"calls"}),
        }

    @staticmethod
    def _op(attempt: dict[str, Any]) -> Any:
        op = attempt_op(attempt, item_attempt_done=False)
        op.inc["judge.calls"] = 1
        op.inc["judge.prompt_tokens"] = attempt["prompt_tokens"]
        op.inc["judge.completion_tokens"] = attempt["completion_tokens"]
        op.inc["judge.cost_usd"] = attempt["cost_usd"]
        return op

    async def _call(
        self, t: _Target, messages: list[Message], usage: JudgeTotals
    ) -> tuple[dict[str, Any], ChatResult | None] | None:
        """One judge answer: a call retried on transient errors. None when the job stops or a fatal error fails
        it; else the attempt (outcome to be set) and the answer (None: the call failed for good)."""
        w, judge = self.work, self.judge
        retry = 0
        while True:
            await w.writer.storage_available()
            if w.sched.stop_reason in (STOP_CANCELLED, STOP_FATAL):
                return None
            if not w.sched.cost_allows_call():
                w.sched.stop(STOP_MAX_COST)
                return None
            t.call_no += 1
            result, error, started_at, latency_ms = await self._chat(t, messages)
            w.st.calls += 1
            t.usage.add(result)
            for totals in (usage, judge.totals):
                totals.calls += 1
                if result is not None:
                    totals.prompt_tokens += result.prompt_tokens
                    totals.completion_tokens += result.completion_tokens
                    totals.cost_usd += result.cost_usd
            if result is not None:
                w.st.prompt_tokens += result.prompt_tokens
                w.st.completion_tokens += result.completion_tokens
            record = CallRecord(
                t.call_no, t.item_attempt, "judge", len(messages), result, error, started_at, latency_ms
            )
            attempt = attempt_doc(
                w.job, t.plan, record, model_id=judge.shape.model_id, provider=judge.provider_name
            )
            if error is None:
                return attempt, result
            code = fatal_code(error)
            if code is not None:
                attempt["outcome"] = "fatal"
                w.writer.submit(self._op(attempt))
                w.sched.fail(code, "judge: " + fatal_reason(code, error))
                return None
            if not (error.retryable and w.ctx.backoff.should_retry(retry + 1)):
                attempt["errors"] = [{"path": "$", "rule": "judge_error", "message": str(error)[:300]}]
                return attempt, None
            retry += 1
            attempt["outcome"] = "retried"
            w.writer.submit(self._op(attempt))
            await asyncio.sleep(w.ctx.backoff.delay(retry, retry_after=error.retry_after))

    async def _chat(
        self, t: _Target, messages: list[Message]
    ) -> tuple[ChatResult | None, ProviderError | None, datetime, float]:
        """One judge call through the judge provider's fair limiter (as the job's ``<job>:judge`` key)."""
        w, judge = self.work, self.judge
        request = judge.shape.request(messages, seed=t.seed)
        started_at = w.ctx.clock()
        t0 = time.perf_counter()
        result: ChatResult | None = None
        error: ProviderError | None = None
        w.sched.call_started()
        try:
            async with judge.limiter.slot(f"{w.job.job_id}:judge", user=w.job.user_id) as permit:
                with w.provider_call():  # awaited by a cancel (billed), like a generation call
                    result = await judge.provider.chat(request)
                permit.succeeded(result.first_token_ms)
        except ProviderError as exc:
            error = exc
        except asyncio.CancelledError:
            w.sched.call_abandoned()
            raise
        w.sched.call_finished(result.cost_usd if result else 0.0)
        return result, error, started_at, (time.perf_counter() - t0) * 1000.0
