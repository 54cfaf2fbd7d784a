"""``/generate*``: generation jobs (commands through the outbox, reads from the generator, live events).

- ``POST /generate`` validates the request, resolves the template snapshot (templates service, with the caller's
  token) and the model (request > template; checked against the catalog when it answers), stores
  ``GenerationRequested`` in the outbox and answers **202** ``{job_id, status: "queued", links}``.
  ``dry_run: true`` answers 200 with a preview instead (no job).
- ``GET /generate/{id}`` proxies the generator; right after the 202, while the command is still on its way, the
  outbox answers ``queued`` (never 404 for an accepted job of the caller).
- ``GET /generate/{id}/result``, ``DELETE /generate/{id}`` (cancel → 202), ``POST /generate/batch``,
  ``POST /generate/preview``, SSE ``GET /generate/{id}/events``.
- Admission (``POST /generate``, ``/generate/batch``) reserves the caller's quota (``domain.quotas``): 402
  ``budget_exceeded`` / 429 ``quota_exceeded`` with ``{limit, used, requested, remaining, period_resets_at}``; a
  batch is admitted all or nothing. A command larger than a Kafka message may be is 413 ``command_too_large``.

Ownership: the generator verifies the forwarded token; another user's job is 404 everywhere. The rules are in
``llmts_gateway.handlers`` and ``llmts_gateway.domain.jobs``; these routes parse, call a handler and answer.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import JSONResponse
from sse_starlette.sse import EventSourceResponse

from llmts_api import examples as ex
from llmts_api.estimates import GenerationPreviewCreate
from llmts_api.generation import (
    BatchAccepted,
    BatchCreate,
    CancelAccepted,
    ExtendRequest,
    GenerationAccepted,
    GenerationCreate,
    GenerationPreviewPublic,
    JobPublic,
    ReopenAccepted,
    ResultPublic,
    ResultQuery,
    ResumeRequest,
)
from llmts_common.auth import bearer_token
from llmts_common.query import reject_unknown_query
from llmts_gateway import handlers, sampling
from llmts_gateway.deps import Context, CurrentUser, Jobs
from llmts_gateway.domain.ports import Answer
from llmts_gateway.entrypoints.openapi import error_cases
from llmts_gateway.entrypoints.relay import relay

router = APIRouter(tags=["generation"], dependencies=[Depends(reject_unknown_query)])

_JOB = {"job_id": ex.JOB_ID}
_ENDED: dict[int | str, dict[str, Any]] = {
    409: error_cases(
        "The job already ended.", ended=("job_finished", "the job already ended (completed)", None)
    )
}
_QUOTA = {"limit": "items_per_day", "used": 49_990, "requested": 20, "remaining": 10}
ERRORS: dict[int | str, dict[str, Any]] = {
    401: error_cases(
        "Missing or invalid bearer token.",
        missing=("unauthorized", "missing bearer token", None),
        expired=("invalid_token", "the access token has expired", None),
    ),
    404: error_cases(
        "Unknown job (or another user's job); POST: unknown template.",
        job=("job_not_found", "generation job not found", _JOB),
        template=("template_not_found", "template 't_0000' not found", {"template_id": "t_0000"}),
    ),
    422: error_cases(
        "Invalid request (field, template, model, count, validation mode).",
        field=(
            "validation_error",
            "invalid request: count: Input should be greater than or equal to 1",
            [
                {
                    "loc": ["body", "count"],
                    "msg": "Input should be greater than or equal to 1",
                    "type": "greater_than_equal",
                }
            ],
        ),
        model=(
            "unknown_model",
            "unknown model 'openai/gpt-5-nano'",
            {"field": "model", "model": "openai/gpt-5-nano", "provider": "openrouter"},
        ),
    ),
    402: error_cases(
        "POST: the job's estimated cost does not fit the caller's budget (budget_exceeded).",
        budget=(
            "budget_exceeded",
            "the job's estimated cost (up to $0.30) exceeds the remaining budget ($0.10)",
            {
                "limit": "budget_usd",
                "used": 4.9,
                "requested": 0.3,
                "remaining": 0.1,
                "period_resets_at": "2027-01-01T00:00:00Z",
            },
        ),
    ),
    413: error_cases(
        "POST: the job's command exceeds the Kafka message limit (command_too_large).",
        command=(
            "command_too_large",
            "the job's command (1200345 bytes: template, tasks and variables) exceeds the limit of 1000000 bytes",
            {"limit": 1_000_000, "size": 1_200_345},
        ),
    ),
    429: error_cases(
        "POST: a volume or concurrency quota of the caller would be passed (quota_exceeded).",
        quota=(
            "quota_exceeded",
            "20 items would pass today's limit of 50000",
            {**_QUOTA, "period_resets_at": "2026-12-07T00:00:00Z"},
        ),
    ),
    503: error_cases(
        "A service behind the gateway is unreachable.",
        down=("service_unavailable", "the generator service is unavailable", {"service": "generator"}),
    ),
}
Authorization = Annotated[str | None, Header()]


def token_of(authorization: str | None, token: str | None) -> str:
    if token:
        return token
    return bearer_token(authorization)


@router.post(
    "/generate",
    status_code=202,
    response_model=GenerationAccepted,
    summary="Start a generation job (202) — or preview it with dry_run",
    responses={
        200: {
            "description": "dry_run: rendered prompts, provider request body, cost range",
            "model": GenerationPreviewPublic,
        },
        **ERRORS,
    },
)
async def create_job(
    body: GenerationCreate,
    jobs: Jobs,
    user: CurrentUser,
    response: Response,
    authorization: Authorization = None,
) -> Any:
    outcome = await handlers.create_or_preview(
        body, user_id=user.user_id, token=bearer_token(authorization), deps=jobs
    )
    if isinstance(outcome, Answer):
        return relay(outcome)
    response.headers["Location"] = outcome.links.self
    return outcome


@router.post(
    "/generate/preview",
    response_model=GenerationPreviewPublic,
    summary="Preview a job: rendered prompts of the first items, exact provider request body, cost range",
    responses=ERRORS,
)
async def preview_job(
    body: GenerationPreviewCreate,
    jobs: Jobs,
    user: CurrentUser,
    ctx: Context,
    authorization: Authorization = None,
) -> JSONResponse:
    token = bearer_token(authorization)
    if body.estimate == "sample":  # a real sample of the job, charged (llmts_gateway.sampling)
        timeout_s = ctx.settings.estimate_sample_timeout_seconds
        answer = await sampling.preview_with_sample(
            body, user_id=user.user_id, token=token, deps=jobs, timeout_s=timeout_s
        )
        return relay(answer)
    return relay(await handlers.preview_job(body, user_id=user.user_id, token=token, deps=jobs))


@router.post(
    "/generate/batch",
    status_code=202,
    response_model=BatchAccepted,
    summary="Start several jobs at once (all validated first; one job id per request)",
    responses=ERRORS,
)
async def create_batch(
    body: BatchCreate, jobs: Jobs, user: CurrentUser, authorization: Authorization = None
) -> BatchAccepted:
    token = bearer_token(authorization)
    return await handlers.submit_batch(body, user_id=user.user_id, token=token, deps=jobs)


@router.get("/generate/{job_id}", response_model=JobPublic, summary="Status of a job", responses=ERRORS)
async def get_job(
    job_id: str, jobs: Jobs, user: CurrentUser, authorization: Authorization = None
) -> JSONResponse:
    token = bearer_token(authorization)
    return relay(await handlers.job_status(job_id, user_id=user.user_id, token=token, deps=jobs))


@router.get(
    "/generate/{job_id}/result",
    response_model=ResultPublic,
    summary="Items of a job: {items: [{index, data, attempts, usage}], total}",
    responses=ERRORS,
)
async def get_result(
    job_id: str,
    jobs: Jobs,
    _user: CurrentUser,
    query: Annotated[ResultQuery, Query()],
    authorization: Authorization = None,
) -> JSONResponse:
    return relay(await handlers.result(job_id, query, token=bearer_token(authorization), deps=jobs))


@router.delete(
    "/generate/{job_id}",
    status_code=202,
    response_model=CancelAccepted,
    summary="Cancel a job: no new call, the calls at the provider awaited (billed) up to the generator's drain "
    "window, finished items kept, status becomes cancelled",
    responses={**_ENDED, **ERRORS},
)
async def cancel_job(
    job_id: str, jobs: Jobs, user: CurrentUser, authorization: Authorization = None
) -> CancelAccepted:
    token = bearer_token(authorization)
    return await handlers.cancel(job_id, user_id=user.user_id, token=token, deps=jobs)


_ROUND: dict[int | str, dict[str, Any]] = {
    409: error_cases(
        "The job cannot take this round now.",
        running=("job_not_finished", "the job is running: wait until it ends", None),
        done=("nothing_missing", "the job has all its 100 items", None),
        rejected=("nothing_rejected", "the job has no rejected slot", None),
        kind=("job_not_reopenable", "a completed job has nothing to resume", None),
    )
}
_ROUND_NOTE = (
    " Answers 202 with the round that will run; until the generator takes it, `GET /generate/{id}` still shows "
    "the previous round (wait for its `round`). Accepted items are kept and never paid again; the round is "
    "admitted against your quota like a new job."
)


@router.post(
    "/generate/{job_id}/extend",
    status_code=202,
    response_model=ReopenAccepted,
    summary="Add items to a finished job (new indexes, no duplicate of the existing items)",
    description="`count` more valid items; dedup and `unique` rules are checked against the items the job has."
    + _ROUND_NOTE,
    responses={**_ROUND, **ERRORS},
)
async def extend_job(
    job_id: str, body: ExtendRequest, jobs: Jobs, user: CurrentUser, authorization: Authorization = None
) -> ReopenAccepted:
    return await handlers.reopen(
        job_id,
        "extend",
        count=body.count,
        max_cost_usd=body.max_cost_usd,
        user_id=user.user_id,
        token=bearer_token(authorization),
        deps=jobs,
    )


@router.post(
    "/generate/{job_id}/resume",
    status_code=202,
    response_model=ReopenAccepted,
    summary="Continue a cancelled, failed, stopped or incomplete job from where it stopped",
    description="Runs only the missing items (a new `max_cost_usd` may be given for the round)."
    + _ROUND_NOTE,
    responses={**_ROUND, **ERRORS},
)
async def resume_job(
    job_id: str,
    jobs: Jobs,
    user: CurrentUser,
    body: ResumeRequest | None = None,
    authorization: Authorization = None,
) -> ReopenAccepted:
    return await handlers.reopen(
        job_id,
        "resume",
        max_cost_usd=body.max_cost_usd if body else None,
        user_id=user.user_id,
        token=bearer_token(authorization),
        deps=jobs,
    )


@router.post(
    "/generate/{job_id}/retry-rejected",
    status_code=202,
    response_model=ReopenAccepted,
    summary="Regenerate the rejected slots of a job that ended short of its count",
    description="In the exactly-N model a rejected slot's target goes back to the queue: the slots still "
    "rejected at the end are the job's missing items (with those a cap stopped before they were tried); they "
    "are generated again with a fresh attempt budget. Needs a rejection and a missing item." + _ROUND_NOTE,
    responses={**_ROUND, **ERRORS},
)
async def retry_rejected(
    job_id: str,
    jobs: Jobs,
    user: CurrentUser,
    body: ResumeRequest | None = None,
    authorization: Authorization = None,
) -> ReopenAccepted:
    return await handlers.reopen(
        job_id,
        "retry_rejected",
        max_cost_usd=body.max_cost_usd if body else None,
        user_id=user.user_id,
        token=bearer_token(authorization),
        deps=jobs,
    )


@router.get(
    "/generate/{job_id}/events",
    summary="Server-Sent Events: the current state, then every event of the job until it ends",
    description="Token as `Authorization: Bearer` or `?token=` (EventSource cannot set headers). Events: "
    "`snapshot` (the job status), then `started`, `item_generated`, `item_rejected`, `progress`, and one of "
    "`completed` / `failed` / `cancelled`, after which the stream ends. Each data is `{id, type, time, data}`.",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {"example": ex.SSE_EVENTS}}}, **ERRORS},
)
async def job_events(
    job_id: str,
    ctx: Context,
    jobs: Jobs,
    authorization: Authorization = None,
    token: Annotated[str | None, Query(description="Access token (alternative to the header).")] = None,
) -> EventSourceResponse:
    raw = token_of(authorization, token)
    user = await ctx.verifier.verify(raw)
    watch = handlers.JobWatch(job_id, user_id=user.user_id, token=raw, deps=jobs)
    snapshot = await watch.open()  # 404 / 503 raised before the stream starts

    async def stream() -> AsyncIterator[dict[str, Any]]:
        try:
            async for event in watch.events(snapshot):
                name = str(event.get("type", "snapshot")).rsplit(".", 1)[-1]
                yield {"event": name, "id": event.get("id"), "data": json.dumps(event, default=str)}
        finally:
            watch.close()

    return EventSourceResponse(
        stream(), ping=15, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
