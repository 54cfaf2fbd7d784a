"""Use cases of model comparison (issue 18 #6): plain async functions over the generation ports.

A comparison is built on ordinary jobs: each model's job is built, admitted against the caller's quota (all the
jobs at once: the sum of the samples counts like a batch) and accepted through the outbox exactly as
``POST /generate`` does (``llmts_gateway.handlers``). The report reads each job's history and accepted items from
the generator and puts them side by side (``llmts_gateway.domain.compare``).
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime
from typing import Any

from llmts_api.compare import (
    MAX_SAMPLE,
    CompareAccepted,
    CompareCancelled,
    CompareCreate,
    CompareJob,
    CompareLinks,
    CompareModelRef,
    CompareQuery,
    CompareReport,
)
from llmts_api.generation import GenerationCreate, ModelChoice
from llmts_common.contracts import GenerationRequested
from llmts_common.errors import AppError, Conflict, NotFound
from llmts_gateway import handlers
from llmts_gateway.domain import compare, jobs
from llmts_gateway.domain.ports import Answer, ComparisonStore
from llmts_gateway.handlers import Deps

ATTEMPTS_LIMIT = 5000  # the generator's most; a comparison job has ≤ 50 items × ≤ 20 item attempts


def _job_request(body: CompareCreate, model: ModelChoice, seed: int) -> GenerationCreate:
    return GenerationCreate(
        template_id=body.template_id,
        count=body.sample,
        variables=body.variables,
        model=model,
        validation_mode=body.validation_mode,
        concurrency=body.concurrency,
        max_attempts_per_item=body.max_attempts_per_item,
        max_cost_usd=body.max_cost_usd,
        dedup=body.dedup,
        cache=body.cache,
        seed=seed,
    )


async def _plan(
    body: CompareCreate, seed: int, *, user_id: str, token: str, deps: Deps
) -> list[tuple[GenerationRequested, dict[str, Any] | None]]:
    planned = []
    for i, model in enumerate(body.models):
        try:
            planned.append(
                await handlers.build_command(
                    _job_request(body, model, seed), user_id=user_id, token=token, deps=deps
                )
            )
        except AppError as exc:  # name the model the error is about
            exc.details = {"model": i, "error": exc.details}
            exc.message = f"models[{i}] ({model.id}): {exc.message}"
            raise
    return planned


def _record(
    body: CompareCreate,
    commands: list[GenerationRequested],
    *,
    cid: str,
    seed: int,
    user_id: str,
    now: datetime,
) -> dict[str, Any]:
    return {
        "_id": cid,
        "owner_id": user_id,
        "template_id": body.template_id,
        "sample": body.sample,
        "seed": seed,
        "variables": body.variables,
        "options": {
            "validation_mode": body.validation_mode,
            "max_attempts_per_item": body.max_attempts_per_item,
            "dedup": body.dedup,
        },
        "models": [
            {"model": model.model_dump(exclude_defaults=True), "job_id": command.job_id}
            for model, command in zip(body.models, commands, strict=True)
        ],
        "created_at": now,
    }


async def start(
    body: CompareCreate, *, user_id: str, token: str, deps: Deps, store: ComparisonStore
) -> CompareAccepted:
    """One job per model, the same seed (given or random); admitted all or nothing, recorded, then accepted."""
    seed = body.seed if body.seed is not None else secrets.randbelow(2**31)
    admitted = await handlers.admit(
        await _plan(body, seed, user_id=user_id, token=token, deps=deps), user_id=user_id, deps=deps
    )
    cid = f"cmp_{deps.new_id()}"
    record = _record(body, admitted, cid=cid, seed=seed, user_id=user_id, now=deps.clock())
    try:
        await store.insert(record)
    except Exception:
        await handlers.release_all(admitted, user_id=user_id, deps=deps)
        raise
    for position, command in enumerate(admitted):
        try:
            await handlers.submit(command, deps=deps)
        except Exception:
            await handlers.release_all(admitted[position:], user_id=user_id, deps=deps)
            if position == 0:
                await store.delete(cid)
            raise
    return CompareAccepted(
        comparison_id=cid,
        seed=seed,
        jobs=[
            CompareJob(model=CompareModelRef(**compare.model_key(e["model"])), job_id=e["job_id"])
            for e in record["models"]
        ],
        links=CompareLinks(self=f"/generate/compare/{cid}"),
    )


async def _owned(comparison_id: str, *, user_id: str, store: ComparisonStore) -> dict[str, Any]:
    record = await store.get(comparison_id, owner_id=user_id)
    if record is None:
        raise NotFound(
            "comparison not found", code="comparison_not_found", details={"comparison_id": comparison_id}
        )
    return record


async def _job_view(job_id: str, *, user_id: str, token: str, deps: Deps) -> dict[str, Any]:
    """The job's history (job + attempts); while its command is on its way, its queued view from the outbox."""
    answer = await deps.generator.history_job(job_id, attempts_limit=ATTEMPTS_LIMIT, token=token)
    if answer.status == 404:
        answer = await handlers.job_status(job_id, user_id=user_id, token=token, deps=deps)
    return jobs.job_or_error(job_id, answer)


async def _items(job_id: str, view: dict[str, Any], *, token: str, deps: Deps) -> tuple[list[Any], int]:
    """Every accepted item of the job (a comparison job has at most ``MAX_SAMPLE`` of them) and their count."""
    if not int((view.get("counts") or {}).get("succeeded") or 0):
        return [], 0
    answer: Answer = await deps.generator.get_result(
        job_id, params={"limit": MAX_SAMPLE, "offset": 0}, token=token
    )
    if answer.status == 404:  # the job's items are not readable yet (its command is on its way)
        return [], 0
    if not answer.ok or not isinstance(answer.body, dict):
        jobs.job_or_error(job_id, answer)  # the upstream's error (503 when the generator is away)
        return [], 0
    items = [i for i in answer.body.get("items") or [] if isinstance(i, dict)]
    return items, int(answer.body.get("total") or len(items))


async def _model_report(
    entry: dict[str, Any], shown: int, *, user_id: str, token: str, deps: Deps
) -> dict[str, Any]:
    job_id = entry["job_id"]
    try:
        view = await _job_view(job_id, user_id=user_id, token=token, deps=deps)
    except NotFound as exc:  # the command never reached the generator and the outbox purged it
        row = compare.model_row(entry["model"], job_id, {"status": "unknown"}, [], items_total=0, shown=0)
        return {**row, "error": {"code": exc.code, "message": exc.message}}
    items, total = await _items(job_id, view, token=token, deps=deps)
    return compare.model_row(entry["model"], job_id, view, items, items_total=total, shown=shown)


async def report(
    comparison_id: str, query: CompareQuery, *, user_id: str, token: str, deps: Deps, store: ComparisonStore
) -> CompareReport:
    """The side-by-side report: what is known of each job now; the winner once every job has ended."""
    record = await _owned(comparison_id, user_id=user_id, store=store)
    rows = await asyncio.gather(
        *(
            _model_report(entry, query.items, user_id=user_id, token=token, deps=deps)
            for entry in record["models"]
        )
    )
    best = compare.winner(rows)
    chosen = None
    if best is not None:
        chosen = next(e for e in record["models"] if e["job_id"] == best["job_id"])
    return CompareReport.model_validate(
        {
            "comparison_id": comparison_id,
            "status": compare.overall_status(rows),
            "template_id": record["template_id"],
            "sample": record["sample"],
            "seed": record["seed"],
            "created_at": record["created_at"],
            "models": rows,
            "winner": None
            if best is None
            else {"model": best["model"], "job_id": best["job_id"], "rule": compare.WINNER_RULE},
            "start": None if chosen is None else compare.start_body(record, chosen["model"]),
        }
    )


async def cancel(
    comparison_id: str, *, user_id: str, token: str, deps: Deps, store: ComparisonStore
) -> CompareCancelled:
    """Cancel the comparison's jobs still running (409 ``comparison_finished`` when none is)."""
    record = await _owned(comparison_id, user_id=user_id, store=store)
    cancelled = []
    for entry in record["models"]:
        try:
            await handlers.cancel(entry["job_id"], user_id=user_id, token=token, deps=deps)
        except (Conflict, NotFound):
            continue  # ended already (or its command was never delivered and is gone)
        cancelled.append(entry["job_id"])
    if not cancelled:
        raise Conflict(
            "every job of the comparison already ended",
            code="comparison_finished",
            details={"comparison_id": comparison_id},
        )
    return CompareCancelled(comparison_id=comparison_id, cancelled=cancelled)
