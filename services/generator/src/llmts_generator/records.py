"""The documents and events a running job writes: one attempt per provider call, accepted and rejected items
(with their event, whose envelope id is stored on the item), and the :class:`Op` that carries them to the
writer."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from llmts_common.contracts import ItemGenerated, ItemRejected, Message, ModelUsed, Usage
from llmts_common.envelope import Envelope
from llmts_generator.domain.costs import mark_reconcile
from llmts_generator.domain.evaluation import RejectReason
from llmts_generator.domain.ports import EventSink, attempt_id, item_id, rejected_item_id
from llmts_generator.domain.repair import error_summary
from llmts_generator.domain.scheduling import SlotPlan
from llmts_generator.folding import Op
from llmts_providers import ChatResult, ProviderError

MAX_LAST_OUTPUT_CHARS = 8000


@dataclass(frozen=True)
class JobRef:
    """Who a running job is: its id, owner user, and the lease run of this process."""

    job_id: str
    user_id: str
    run_no: int
    round: int = 1  # the job's round (extend / resume / retry-rejected start a new one)


@dataclass
class SlotUsage:
    """What the calls of one target cost (retried calls included)."""

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


@dataclass(frozen=True)
class CallRecord:
    """One provider call as it goes into its attempt document."""

    call_no: int
    item_attempt: int
    kind: str  # first | repair | retry
    messages: int
    result: ChatResult | None
    error: ProviderError | None
    started_at: datetime
    latency_ms: float


def attempt_doc(
    job: JobRef, plan: SlotPlan, call: CallRecord, *, model_id: str, provider: str | None
) -> dict[str, Any]:
    result = call.result
    doc: dict[str, Any] = {
        "_id": attempt_id(job.job_id, plan.slot, call.call_no),
        "job_id": job.job_id,
        "user_id": job.user_id,
        "run": job.run_no,
        "round": job.round,
        "slot": plan.slot,
        "target": plan.target,
        "call": call.call_no,
        "item_attempt": call.item_attempt,
        "kind": call.kind,
        "model": model_id,
        "provider": provider,
        "messages": call.messages,
        "started_at": call.started_at,
        "latency_ms": round(call.latency_ms, 1),
        "first_token_ms": _ttft(result),
        "prompt_tokens": result.prompt_tokens if result else 0,
        "completion_tokens": result.completion_tokens if result else 0,
        "cost_usd": result.cost_usd if result else 0.0,
        "cost_reported": result.cost_reported if result else False,
        "cached_tokens": result.cached_tokens if result else 0,
        "cache_write_tokens": result.cache_write_tokens if result else 0,
        "finish_reason": result.finish_reason if result else None,
        "generation_id": result.generation_id if result else _generation_of(call.error),
        "outcome": None,
        "errors": [],
    }
    if call.error is not None:
        doc["error"] = {k: v for k, v in call.error.to_dict().items() if k != "provider"}
    mark_reconcile(doc, failed=call.error is not None)
    return doc


def _generation_of(error: ProviderError | None) -> str | None:
    """The generation a failed call started (a cut stream is billed), else None."""
    return error.generation_id if error is not None else None


def _ttft(result: ChatResult | None) -> float | None:
    """Time to first token of a streamed call (the server's queue included), else None."""
    return (
        round(result.first_token_ms, 1) if result is not None and result.first_token_ms is not None else None
    )


def attempt_op(attempt: dict[str, Any], *, item_attempt_done: bool) -> Op:
    """The write of one attempt: the document plus the live counters it moves (a retried call is billed but is
    not an item attempt)."""
    attempt["item_attempt_done"] = 1 if item_attempt_done else 0
    inc: dict[str, float] = {
        "counts.attempts": 1,
        "usage.prompt_tokens": attempt["prompt_tokens"],
        "usage.completion_tokens": attempt["completion_tokens"],
        "usage.cost_usd": attempt["cost_usd"],
    }
    if item_attempt_done:
        inc["counts.item_attempts"] = 1
    if attempt.get("cache_hit"):
        inc["counts.cache_hits"] = 1
        inc["usage.saved_cost_usd"] = float(attempt.get("saved_cost_usd", 0.0))
    if attempt.get("cache_miss"):
        inc["counts.cache_misses"] = 1
    if attempt.get("outcome") == "near_duplicate":  # near-duplicate control (issue 18): turned away
        inc["counts.near_duplicates"] = 1
    return Op(inc=inc, max={"next_slot": attempt["slot"] + 1}, attempts=[attempt])


@dataclass(frozen=True)
class ItemOutcome:
    """How a target ended: the slot, its item attempts and what its calls cost."""

    plan: SlotPlan
    item_attempts: int
    usage: SlotUsage
    created_at: datetime


def accepted_op(
    job: JobRef,
    events: EventSink,
    attempt: dict[str, Any],
    done: ItemOutcome,
    *,
    index: int,
    value: Any,
    digest: str,
    task_index: int,
    inputs: dict[str, Any] | None = None,
    judge: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
) -> Op:
    """The final attempt of a target + the accepted item at ``index`` (reserved by the caller) + its event;
    ``provenance``: how it was made (``itemdraws.item_provenance``). With an LLM judge (``judge``: its verdict,
    stored on the item) the attempt was written when the item went to the judge: only the item is added here."""
    event = ItemGenerated(
        job_id=job.job_id,
        user_id=job.user_id,
        index=index,
        data=value,
        attempts=done.item_attempts,
        usage=done.usage.usage(),
        content_hash=digest,
        model=ModelUsed(provider=attempt.get("provider"), id=str(attempt.get("model"))),
        inputs=inputs,
        judge=judge,
        provenance=provenance,
    )
    envelope = events.envelope_for(event)
    item = {
        "_id": item_id(job.job_id, index),
        "job_id": job.job_id,
        "user_id": job.user_id,
        "index": index,
        "status": "accepted",
        "target": done.plan.target,
        "task_index": task_index,
        "inputs": inputs,
        "slot": done.plan.slot,
        "data_json": json.dumps(value, ensure_ascii=False, separators=(",", ":")),
        "content_hash": digest,
        "model": {"provider": attempt.get("provider"), "id": attempt.get("model")},
        "attempts": done.item_attempts,
        "calls": done.usage.calls,
        "usage": done.usage.doc(),
        "created_at": done.created_at,
        "event_id": envelope.id,
    }
    if judge is not None:
        item["judge"] = judge
    if provenance is not None:
        item["provenance"] = provenance
    op = attempt_op(attempt, item_attempt_done=True) if judge is None else Op()
    op.inc["counts.succeeded"] = 1
    op.inc["next_index"] = 1
    op.items.append(item)
    op.item_events.append((envelope, event.TOPIC))
    return op


def rejected_op(
    job: JobRef,
    events: EventSink,
    attempt: dict[str, Any],
    done: ItemOutcome,
    *,
    number: int,
    reason: RejectReason,
    errors: list[dict[str, Any]],
    last_text: str | None,
    inputs: dict[str, Any] | None = None,
    judge: dict[str, Any] | None = None,
    stage: str | None = None,  # the later stage of a multi-stage item that spent its attempts
    provenance: dict[str, Any] | None = None,
) -> Op:
    """The final attempt of a target + rejected item number ``number`` (stored at index ``-(number + 1)``) + its
    event; ``provenance``: what it was made from (``itemdraws.item_provenance``), as for an accepted item."""
    clipped = last_text[:MAX_LAST_OUTPUT_CHARS] if last_text is not None else None
    summary = error_summary(errors)
    event = ItemRejected(
        job_id=job.job_id,
        user_id=job.user_id,
        slot=done.plan.slot,
        reason=reason,
        errors=summary,
        last_output=clipped,
        attempts=done.item_attempts,
        usage=done.usage.usage(),
        inputs=inputs,
        stage=stage,
        provenance=provenance,
    )
    envelope = events.envelope_for(event)
    item = {
        "_id": rejected_item_id(job.job_id, number),
        "job_id": job.job_id,
        "user_id": job.user_id,
        "index": -(number + 1),
        "status": "rejected",
        "target": done.plan.target,
        "slot": done.plan.slot,
        "reason": reason,
        "stage": stage,
        "errors": summary,
        "inputs": inputs,
        "last_output": clipped,
        "attempts": done.item_attempts,
        "calls": done.usage.calls,
        "usage": done.usage.doc(),
        "created_at": done.created_at,
        "event_id": envelope.id,
    }
    if judge is not None:  # refused by the LLM judge: its verdict; the attempt was written when it was judged
        item["judge"] = judge
    if provenance is not None:
        item["provenance"] = provenance
    op = attempt_op(attempt, item_attempt_done=True) if judge is None else Op()
    op.inc["counts.rejected"] = 1
    op.inc["next_rejected"] = 1
    op.items.append(item)
    op.item_events.append((envelope, event.TOPIC))
    return op


def stored_item_event(job: JobRef, events: EventSink, d: Mapping[str, Any]) -> tuple[Envelope, str]:
    """The event of a stored item, with the envelope id it was first published with (for a republish)."""
    usage = Usage.model_validate(d.get("usage") or {})
    message: Message
    if d.get("status") == "accepted":
        message = ItemGenerated(
            job_id=job.job_id,
            user_id=job.user_id,
            index=int(d["index"]),
            data=json.loads(d["data_json"]),
            attempts=max(1, int(d.get("attempts", 1))),
            usage=usage,
            content_hash=str(d.get("content_hash", "")),
            model=ModelUsed.model_validate(d["model"]) if (d.get("model") or {}).get("id") else None,
            inputs=d.get("inputs"),
            judge=d.get("judge"),
            provenance=d.get("provenance"),
        )
    else:
        message = ItemRejected(
            job_id=job.job_id,
            user_id=job.user_id,
            slot=int(d.get("slot", 0)),
            reason=d.get("reason", "invalid"),
            errors=list(d.get("errors") or []),
            last_output=d.get("last_output"),
            attempts=int(d.get("attempts", 0)),
            usage=usage,
            inputs=d.get("inputs"),
            stage=d.get("stage"),
            provenance=d.get("provenance"),
        )
    return events.envelope_for(message, message_id=d.get("event_id")), message.TOPIC
