"""Use cases of the generator, as plain async functions (message first, dependencies as keywords)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from llmts_common.contracts import GenerationCancelRequested, GenerationReopenRequested, GenerationRequested
from llmts_common.envelope import Envelope
from llmts_common.kafka import TransientError
from llmts_generator.adapters.repository import EPOCH
from llmts_generator.domain import rounds, state
from llmts_generator.domain.caching import job_seed
from llmts_generator.domain.ports import GenerationRepository
from llmts_generator.manager import JobManager

log = logging.getLogger("llmts.generator.handlers")


def new_job_document(message: GenerationRequested, now: datetime) -> dict[str, Any]:
    tpl = message.template
    return {
        "_id": message.job_id,
        "user_id": message.user_id,
        "status": state.QUEUED,
        # the command as JSON text: schemas hold "$ref"/"$defs" keys that not every Mongo-wire server stores
        "request": message.model_dump_json(by_alias=True),
        "template": {
            "id": tpl.id,
            "version": tpl.version,
            "name": tpl.name,
            "output_format": tpl.output_format,
        },
        "model": message.model.model_dump(mode="json"),
        "requested": message.count,
        "validation_mode": message.validation_mode,
        "concurrency": message.concurrency,
        "max_attempts_per_item": message.max_attempts_per_item,
        "max_cost_usd": message.max_cost_usd,
        "dedup": message.dedup,
        "seed": job_seed(message.seed, message.job_id),
        "cache": message.cache,
        "mode": message.mode,
        "round": 1,
        "rounds": [],
        "counts": {
            "succeeded": 0,
            "rejected": 0,
            "attempts": 0,
            "item_attempts": 0,
            "cache_hits": 0,
            "cache_misses": 0,
        },
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "saved_cost_usd": 0.0},
        "next_index": 0,
        "next_rejected": 0,
        "next_slot": 0,
        "run": 0,
        "lease_owner": None,
        "lease_until": EPOCH,
        "settled": False,
        "cancel_requested": False,
        "created_at": message.requested_at,
        "queued_at": now,
        "updated_at": now,
        "started_at": None,
        "finished_at": None,
        "stop_reason": None,
        "error": None,
        "published_index": -1,
        "published_rejected": -1,
        "_outbox": [],
    }


async def handle_generation_requested(
    message: GenerationRequested,
    envelope: Envelope,
    *,
    repo: GenerationRepository,
    manager: JobManager,
    clock: Callable[[], datetime],
) -> None:
    """Store the job (idempotent: a redelivered command changes nothing), then try to run it here."""
    created = await repo.create_job(new_job_document(message, clock()))
    if not created:
        log.info("job %s already known (redelivery %s)", message.job_id, envelope.id)
    await manager.try_start(message.job_id, message.user_id)  # or later, queued, when admission refuses


async def handle_cancel_requested(
    message: GenerationCancelRequested,
    envelope: Envelope,
    *,
    repo: GenerationRepository,
    manager: JobManager,
    clock: Callable[[], datetime],
) -> None:
    """Flag the job; its runner (here, or in another process via the lease renewal) ends it ``cancelled``."""
    doc = await repo.get_job(message.job_id, {"user_id": 1, "status": 1})
    if doc is None:
        log.warning("cancel %s for unknown job %s ignored", envelope.id, message.job_id)
        return
    if doc.get("user_id") != message.user_id:
        log.warning("cancel of job %s by a non-owner ignored", message.job_id)
        return
    if state.is_terminal(str(doc.get("status"))):
        return
    await repo.request_cancel(message.job_id, message.reason, clock())
    if not manager.cancel_local(message.job_id):
        # unowned (queued / expired lease): started whatever the admission limits, the runner ends it at once
        await manager.try_start(message.job_id, message.user_id, cancelling=True)


async def handle_reopen_requested(
    message: GenerationReopenRequested,
    envelope: Envelope,
    *,
    repo: GenerationRepository,
    manager: JobManager,
    clock: Callable[[], datetime],
    settle_wait_s: float = 10.0,
) -> None:
    """Start a new round of a finished job (extend / resume / retry-rejected), then run it here. Idempotent: a
    redelivered command finds its round already started (the envelope id is recorded on the round). A command
    the job cannot take (checked by the gateway already; a race) is logged and dropped."""
    doc = await _settled_job(repo, message.job_id, settle_wait_s)
    if doc is None or doc.get("user_id") != message.user_id:
        log.warning("reopen %s of unknown or foreign job %s ignored", envelope.id, message.job_id)
        return
    if state.is_terminal(str(doc.get("status"))) and not doc.get("settled"):
        # its owner is still publishing the end (or died doing so: the next claim settles it): come back later
        raise TransientError(f"job {message.job_id} has ended but is not settled yet")
    if not rounds.has_round(doc, envelope.id):
        reopen = rounds.Reopen(
            message.kind, message.count, message.max_cost_usd, command_id=envelope.id, at=clock()
        )
        try:
            rounds.check(doc, reopen)
        except rounds.ReopenRefused as exc:
            log.warning("reopen %s of job %s refused: %s", envelope.id, message.job_id, exc.message)
            return
        if not await repo.reopen(doc, rounds.reopen_update(doc, reopen)):
            raise RuntimeError(
                f"job {message.job_id} changed while being reopened"
            )  # redelivered, read again
        log.info("job %s: round %s (%s)", message.job_id, int(doc.get("round", 1)) + 1, message.kind)
    await manager.try_start(message.job_id, message.user_id)


async def _settled_job(repo: GenerationRepository, job_id: str, wait_s: float) -> dict[str, Any] | None:
    """The job once settled (a job that just ended publishes its outbox first: milliseconds), or as it is after
    ``wait_s``."""
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        doc = await repo.get_job(job_id)
        if doc is None or doc.get("settled") or not state.is_terminal(str(doc.get("status"))):
            return doc
        if asyncio.get_running_loop().time() >= deadline:
            return doc
        await asyncio.sleep(0.05)
