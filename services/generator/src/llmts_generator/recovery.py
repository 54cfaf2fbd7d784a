"""The in-memory state of a running job, and how a resumed job rebuilds it from what is durable."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmts_common.contracts import GenerationStarted
from llmts_common.envelope import Envelope
from llmts_generator.domain import state
from llmts_generator.domain.ports import EventSink, GenerationRepository
from llmts_generator.records import JobRef, stored_item_event
from llmts_templating.validation import CompiledRules, UniqueState

log = logging.getLogger("llmts.generator.runner")


@dataclass
class JobState:
    """What this run of a job has decided so far. A fresh job starts from zero; a resumed job recomputes the
    totals from ``attempts`` and the next indexes and dedup state from ``items`` (:func:`recover`). No in-memory
    state is trusted across a failure: this is rebuilt on every claim."""

    calls: int = 0
    item_attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    next_index: int = 0
    next_rejected: int = 0
    next_slot: int = 0
    write_seq: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    target_attempts: dict[int, int] = field(default_factory=dict)  # item attempts per target (item seeds)
    judge: dict[str, Any] = field(default_factory=dict)  # the LLM judge's stored totals (judge_calls, …)
    published_index: int = -1
    published_rejected: int = -1
    accepted_docs: list[dict[str, Any]] = field(default_factory=list)
    hashes: set[str] = field(default_factory=set)
    unique: UniqueState = field(default_factory=UniqueState)

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> JobState:
        return cls(
            next_slot=int(doc.get("next_slot", 0)),
            write_seq=int(doc.get("write_seq", 0)),
            published_index=int(doc.get("published_index", -1)),
            published_rejected=int(doc.get("published_rejected", -1)),
        )

    def rebuild_dedup(self, rules: CompiledRules) -> list[int]:
        """Dedup hashes and ``unique`` rule values from the accepted items; returns their targets (done)."""
        done_targets: list[int] = []
        for item in self.accepted_docs:
            done_targets.append(int(item.get("target", item.get("index", 0))))
            if item.get("content_hash"):
                self.hashes.add(str(item["content_hash"]))
            if rules.unique and item.get("data_json") is not None:
                self.unique.commit(json.loads(item["data_json"]), rules)
        return done_targets


async def recover(
    repo: GenerationRepository,
    events: EventSink,
    job: JobRef,
    owner: str,
    doc: Mapping[str, Any],
    st: JobState,
) -> None:
    """Rebuild a resumed job from what is durable, and publish what a previous owner may not have."""
    fresh = job.run_no <= 1 and doc.get("status") == state.QUEUED
    outbox = list(doc.get("_outbox") or [])
    if fresh and not outbox:
        return
    accepted, rejected = await _load_items(repo, job, st)
    totals = await repo.attempt_totals(job.job_id)
    st.calls = totals["calls"]
    st.item_attempts = totals["item_attempts"]
    st.prompt_tokens = totals["prompt_tokens"]
    st.completion_tokens = totals["completion_tokens"]
    st.cost_usd = totals["cost_usd"]
    st.cache_hits = int(totals.get("cache_hits", 0))
    st.cache_misses = int(totals.get("cache_misses", 0))
    st.next_slot = max(st.next_slot, totals["next_slot"])
    st.target_attempts = await repo.item_attempts_by_target(job.job_id)
    st.judge = {k: v for k, v in totals.items() if k.startswith("judge_")}
    await _republish(repo, events, job, outbox, accepted, rejected, st)
    # the live counters are a cache: make them equal to the durable truth again
    await repo.write(
        job.job_id,
        owner,
        job.run_no,
        {
            "$set": {
                "counts.succeeded": len(accepted),
                "counts.rejected": len(rejected),
                "counts.attempts": st.calls,
                "counts.item_attempts": st.item_attempts,
                "counts.cache_hits": st.cache_hits,
                "counts.cache_misses": st.cache_misses,
                "usage.prompt_tokens": st.prompt_tokens,
                "usage.completion_tokens": st.completion_tokens,
                "usage.cost_usd": round(st.cost_usd, 10),
                "next_index": st.next_index,
                "next_rejected": st.next_rejected,
                "next_slot": st.next_slot,
                **{f"judge.{k.removeprefix('judge_')}": v for k, v in st.judge.items()},
            }
        },
    )


async def _load_items(
    repo: GenerationRepository, job: JobRef, st: JobState
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The stored items, accepted (by index) and rejected (by rejection number); sets the next indexes."""
    items = await repo.job_items(job.job_id)
    accepted = sorted((d for d in items if d.get("status") == "accepted"), key=lambda d: int(d["index"]))
    rejected = sorted((d for d in items if d.get("status") == "rejected"), key=lambda d: -int(d["index"]))
    indexes = [int(d["index"]) for d in accepted]
    if indexes != list(range(len(indexes))):
        log.error("job %s: item indexes are not dense: %s", job.job_id, indexes[:50])
    st.accepted_docs = accepted
    st.next_index = indexes[-1] + 1 if indexes else 0
    st.next_rejected = -int(rejected[-1]["index"]) if rejected else 0
    return accepted, rejected


async def _republish(
    repo: GenerationRepository,
    events: EventSink,
    job: JobRef,
    outbox: list[dict[str, Any]],
    accepted: list[dict[str, Any]],
    rejected: list[dict[str, Any]],
    st: JobState,
) -> None:
    """Publish what may not have reached Kafka (job-level entries around the item events, with their stored
    envelope ids), empty the outbox and advance the watermarks."""
    started = [e for e in outbox if e["envelope"]["type"] == GenerationStarted.TYPE]
    later = [e for e in outbox if e["envelope"]["type"] != GenerationStarted.TYPE]
    unpublished = [d for d in accepted if int(d["index"]) > st.published_index] + [
        d for d in rejected if -int(d["index"]) - 1 > st.published_rejected
    ]
    publish = [(Envelope.model_validate(e["envelope"]), e["topic"]) for e in started]
    publish += [stored_item_event(job, events, d) for d in unpublished]
    publish += [(Envelope.model_validate(e["envelope"]), e["topic"]) for e in later]
    if publish:
        await events.publish_many(publish)
        log.info("job %s: republished %d event(s) after resume", job.job_id, len(publish))
    if outbox:
        await repo.pull_outbox(job.job_id, [e["id"] for e in outbox])
    st.published_index = max(st.published_index, st.next_index - 1)
    st.published_rejected = max(st.published_rejected, st.next_rejected - 1)
    await repo.set_watermarks(job.job_id, st.published_index, st.published_rejected)
