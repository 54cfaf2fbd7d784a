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
from llmts_api.generation import (
    BatchAccepted,
    BatchCreate,
    CancelAccepted,
    GenerationAccepted,
    GenerationCreate,
    GenerationPreviewPublic,
    JobPublic,
    ResultPublic,
    ResultQuery,
)
from llmts_common.auth import bearer_token
from llmts_common.query import reject_unknown_query
from llmts_gateway import handlers
from llmts_gateway.deps import Context, CurrentUser, Jobs
from llmts_gateway.domain.ports import Answer
from llmts_gateway.entrypoints.relay import relay

router = APIRouter(tags=["generation"], dependencies=[Depends(reject_unknown_query)])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid bearer token."},
    404: {"description": "Unknown job (or another user's job)."},
    422: {"description": "Invalid request (field, template, model, count, validation mode)."},
    402: {
        "description": "POST: the job's estimated cost does not fit the caller's budget (budget_exceeded)."
    },
    413: {"description": "POST: the job's command exceeds the Kafka message limit (command_too_large)."},
    429: {
        "description": "POST: a volume or concurrency quota of the caller would be passed (quota_exceeded)."
    },
    503: {"description": "A service behind the gateway is unreachable."},
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
    body: GenerationCreate, jobs: Jobs, user: CurrentUser, authorization: Authorization = None
) -> JSONResponse:
    token = bearer_token(authorization)
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
    summary="Cancel a job: in-flight calls are abandoned, finished items kept, status becomes cancelled",
    responses={409: {"description": "The job already ended."}, **ERRORS},
)
async def cancel_job(
    job_id: str, jobs: Jobs, user: CurrentUser, authorization: Authorization = None
) -> CancelAccepted:
    token = bearer_token(authorization)
    return await handlers.cancel(job_id, user_id=user.user_id, token=token, deps=jobs)


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
