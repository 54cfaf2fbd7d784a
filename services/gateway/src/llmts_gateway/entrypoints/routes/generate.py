"""``/generate*``: generation jobs (commands through the outbox, reads from the generator, live events).

- ``POST /generate`` validates the request, resolves the template snapshot (templates service, with the caller's
  token) and the model (request > template; checked against the catalog when it answers), stores
  ``GenerationRequested`` in the outbox and answers **202** ``{job_id, status: "queued", links}``.
  ``dry_run: true`` answers 200 with a preview instead (no job).
- ``GET /generate/{id}`` proxies the generator; right after the 202, while the command is still on its way, the
  outbox answers ``queued`` (never 404 for an accepted job of the caller).
- ``GET /generate/{id}/result``, ``DELETE /generate/{id}`` (cancel → 202), ``POST /generate/batch``,
  ``POST /generate/preview``, SSE ``GET /generate/{id}/events``.

Ownership: the generator verifies the forwarded token; another user's job is 404 everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette.sse import EventSourceResponse

from llmts_common.auth import Principal, bearer_token
from llmts_common.contracts import (
    GenerationCancelRequested,
    GenerationRequested,
    ModelRef,
    TemplateSnapshot,
)
from llmts_common.envelope import new_id
from llmts_common.errors import (
    AppError,
    Conflict,
    NotFound,
    ServiceUnavailable,
    Unprocessable,
    error_body,
)
from llmts_common.outbox import Outbox
from llmts_gateway.deps import Context, CurrentUser, GatewayContext

router = APIRouter(tags=["generation"])

TERMINAL = frozenset({"completed", "completed_with_errors", "failed", "cancelled"})
TERMINAL_EVENT_TYPES = frozenset(
    {"llmts.generation.completed", "llmts.generation.failed", "llmts.generation.cancelled"}
)
DEFAULT_PREVIEW_ITEMS = 3

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid bearer token."},
    404: {"description": "Unknown job (or another user's job)."},
    422: {"description": "Invalid request (field, template, model, count, validation mode)."},
    503: {"description": "A service behind the gateway is unreachable."},
}


# ------------------------------------------------------------------------------------------------ schemas
class ModelChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: Literal["openrouter", "ollama"] | None = Field(default=None, examples=["openrouter"])
    id: str = Field(min_length=1, max_length=300, examples=["openai/gpt-4o-mini"])
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=200_000)


class GenerationCreate(BaseModel):
    """A generation job. Without ``count`` the tasks (request's, else template's) define the items: a task
    with ``count: k`` asks for k items."""

    model_config = ConfigDict(extra="forbid")

    template_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    count: int | None = Field(default=None, ge=1, description="Valid items wanted (≤ the configured max).")
    tasks: list[dict[str, Any]] | None = Field(
        default=None, max_length=10_000, description="Per-task variables (overrides the template's tasks)."
    )
    variables: dict[str, Any] = Field(default_factory=dict, description="Variables for every item.")
    model: ModelChoice | None = Field(default=None, description="Overrides the template's model.")
    validation_mode: Literal["strict", "custom", "none"] | None = Field(
        default=None, description="Overrides the template's validation mode."
    )
    concurrency: int = Field(default=8, ge=1, le=256, description="Provider calls in flight for this job.")
    max_attempts_per_item: int = Field(default=3, ge=1, le=20, description="First try + repair attempts.")
    max_cost_usd: float | None = Field(default=None, gt=0, description="Stop spending beyond this.")
    dedup: bool = Field(default=True, description="Reject and regenerate exact duplicates.")
    dry_run: bool = Field(default=False, description="Preview only: rendered prompts + estimate, no job.")


class JobLinks(BaseModel):
    self: str
    events: str
    websocket: str
    result: str


class GenerationAccepted(BaseModel):
    job_id: str
    status: Literal["queued"] = "queued"
    links: JobLinks


class BatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jobs: list[GenerationCreate] = Field(min_length=1, max_length=100)


class BatchAccepted(BaseModel):
    jobs: list[GenerationAccepted]


class Counts(BaseModel):
    requested: int | None = None
    succeeded: int = 0
    rejected: int = 0
    attempts: int = 0
    item_attempts: int = 0
    in_flight: int | None = None


class UsagePublic(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


class JobPublic(BaseModel):
    """Status of a job (``GET /generate/{id}``)."""

    model_config = ConfigDict(extra="allow")
    job_id: str
    status: Literal["queued", "running", "completed", "completed_with_errors", "failed", "cancelled"]
    template: dict[str, Any] | None = None
    model: dict[str, Any] | None = None
    requested: int | None = None
    counts: Counts
    usage: UsagePublic
    stop_reason: str | None = Field(
        default=None, description="Why the job ended early (caps, cancel, error)."
    )
    error: dict[str, Any] | None = Field(default=None, description="{code, reason} of a failed job.")
    timings: dict[str, Any] = Field(default_factory=dict)


class ItemPublic(BaseModel):
    model_config = ConfigDict(extra="allow")
    index: int | None = Field(description="0..N-1 (dense, acceptance order); null for rejected items.")
    data: Any = Field(default=None, description="Object for json templates, string for text templates.")
    attempts: int
    usage: UsagePublic


class ResultPublic(BaseModel):
    model_config = ConfigDict(extra="allow")
    items: list[ItemPublic]
    total: int


class CancelAccepted(BaseModel):
    job_id: str
    status: Literal["cancelling"] = "cancelling"


# ------------------------------------------------------------------------------------------------ helpers
def links(job_id: str) -> JobLinks:
    return JobLinks(
        self=f"/generate/{job_id}",
        events=f"/generate/{job_id}/events",
        websocket=f"/ws/generate/{job_id}",
        result=f"/generate/{job_id}/result",
    )


def _auth_header(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _relay(resp: Any) -> JSONResponse:
    try:
        body = resp.json()
    except ValueError:
        body = error_body("upstream_error", f"unexpected answer from upstream ({resp.status_code})")
    return JSONResponse(body, status_code=resp.status_code)


def count_from_tasks(tasks: list[dict[str, Any]]) -> int:
    total = 0
    for task in tasks:
        raw = task.get("count", 1)
        total += raw if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0 else 1
    return total


async def resolve_template(ctx: GatewayContext, template_id: str, token: str) -> TemplateSnapshot:
    resp = await ctx.upstreams.request(
        "templates", "GET", f"/templates/{template_id}", headers=_auth_header(token)
    )
    if resp.status_code in (403, 404):
        raise NotFound(
            f"template {template_id!r} not found",
            code="template_not_found",
            details={"template_id": template_id},
        )
    if resp.status_code == 401:
        raise AppError("the templates service refused the token", code="unauthorized", status_code=401)
    if resp.status_code >= 500:
        raise ServiceUnavailable("the templates service is unavailable", details={"service": "templates"})
    if resp.status_code != 200:
        raise Unprocessable(f"template {template_id!r} could not be read ({resp.status_code})")
    doc = resp.json()
    try:
        return TemplateSnapshot.model_validate(
            {
                "id": doc["id"],
                "version": doc.get("version", 1),
                "name": doc.get("name", ""),
                "owner_id": doc.get("owner_id", ""),
                "output_format": (doc.get("output") or {}).get("format", "json"),
                "prompts": doc.get("prompts") or {},
                "schema": doc.get("schema"),
                "validation": doc.get("validation") or {},
                "variables": doc.get("variables") or {},
                "tasks": doc.get("tasks") or [],
                "model": doc.get("model"),
            }
        )
    except Exception as exc:
        raise Unprocessable(f"template {template_id!r} cannot be used for generation: {exc}"[:500]) from exc


async def check_model(
    ctx: GatewayContext, model: ModelRef, token: str
) -> tuple[ModelRef, dict[str, Any] | None]:
    """Known-model check against the catalog when it answers; returns the model (provider filled in) and its
    pricing. An unreachable catalog does not block generation."""
    params = {"provider": model.provider} if model.provider else None
    try:
        resp = await ctx.upstreams.request(
            "catalog", "GET", f"/providers/models/{model.id}", headers=_auth_header(token), params=params
        )
    except ServiceUnavailable:
        return model, None
    if resp.status_code == 404:
        raise Unprocessable(
            f"unknown model {model.id!r}",
            code="unknown_model",
            details={"model": model.id, "provider": model.provider},
        )
    if resp.status_code != 200:
        return model, None
    record = resp.json()
    provider = model.provider or record.get("provider")
    if provider in ("openrouter", "ollama") and provider != model.provider:
        model = model.model_copy(update={"provider": provider})
    pricing = record.get("pricing") if isinstance(record.get("pricing"), Mapping) else None
    return model, pricing


async def build_command(
    ctx: GatewayContext, body: GenerationCreate, user: Principal, token: str
) -> tuple[GenerationRequested, dict[str, Any] | None]:
    """Validate everything known up front; a job never fails later for a reason known now."""
    tpl = await resolve_template(ctx, body.template_id, token)
    tasks = body.tasks if body.tasks is not None else list(tpl.tasks)
    count = body.count
    if count is None:
        count = count_from_tasks(tasks)
        if count == 0:
            raise Unprocessable(
                "count is required: the template defines no tasks", details={"field": "count"}
            )
    limit = ctx.settings.max_generation_count
    if count > limit:
        raise Unprocessable(
            f"count {count} exceeds the maximum of {limit} items per job",
            details={"field": "count", "max": limit},
        )
    model_choice = body.model.model_dump() if body.model else (tpl.model.model_dump() if tpl.model else None)
    if not model_choice:
        raise Unprocessable("no model: the request and the template name none", details={"field": "model"})
    model = ModelRef.model_validate(model_choice)
    model, pricing = await check_model(ctx, model, token)
    mode = body.validation_mode or tpl.validation.mode
    if mode == "strict" and tpl.output_format == "json" and not tpl.json_schema:
        raise Unprocessable(
            "strict validation of a json template needs a schema", details={"field": "validation_mode"}
        )
    command = GenerationRequested(
        job_id=new_id(),
        user_id=user.user_id,
        template=tpl,
        model=model,
        count=count,
        tasks=tasks,
        variables=body.variables,
        validation_mode=mode,
        concurrency=body.concurrency,
        max_attempts_per_item=body.max_attempts_per_item,
        max_cost_usd=body.max_cost_usd,
        dedup=body.dedup,
        requested_at=datetime.now(UTC),
    )
    return command, pricing


async def enqueue(
    ctx: GatewayContext,
    command: GenerationRequested | GenerationCancelRequested,
    message_id: str | None = None,
) -> None:
    outbox = ctx.outbox
    if outbox is None:
        raise ServiceUnavailable("the command outbox is not available")
    topic = ctx.settings.generation_commands_topic
    envelope = await outbox.add(command, message_id=message_id, topic=topic)
    await outbox.publish_one(envelope, topic)


async def preview(
    ctx: GatewayContext, command: GenerationRequested, pricing: dict[str, Any] | None, token: str
) -> JSONResponse:
    payload = {
        "request": command.model_dump(mode="json", by_alias=True),
        "items": min(DEFAULT_PREVIEW_ITEMS, command.count),
        "pricing": pricing,
    }
    resp = await ctx.upstreams.request(
        "generator", "POST", "/preview", json=payload, headers=_auth_header(token)
    )
    if resp.status_code == 200:
        body = resp.json()
        body["dry_run"] = True
        body["template"] = {"id": command.template.id, "version": command.template.version}
        return JSONResponse(body)
    return _relay(resp)


def _outbox_collection(request: Request) -> Any:
    return request.app.state.runtime.db[Outbox.COLLECTION]


def queued_view(job_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
    tpl = data.get("template") or {}
    return {
        "job_id": job_id,
        "status": "queued",
        "template": {"id": tpl.get("id"), "version": tpl.get("version"), "name": tpl.get("name")},
        "model": data.get("model"),
        "requested": data.get("count"),
        "counts": {
            "requested": data.get("count"),
            "succeeded": 0,
            "rejected": 0,
            "attempts": 0,
            "item_attempts": 0,
            "in_flight": 0,
        },
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0},
        "stop_reason": None,
        "error": None,
        "cancel_requested": False,
        "timings": {"created_at": data.get("requested_at"), "started_at": None, "finished_at": None},
        "accepted_by": "gateway",
    }


async def job_status(
    request: Request, ctx: GatewayContext, job_id: str, token: str, user_id: str
) -> tuple[int, dict[str, Any]]:
    """The generator's view of the job, or ``queued`` from the outbox while the command is in transit."""
    resp = await ctx.upstreams.request("generator", "GET", f"/generate/{job_id}", headers=_auth_header(token))
    if resp.status_code == 404:
        doc = await _outbox_collection(request).find_one({"_id": job_id})
        envelope = (doc or {}).get("envelope") or {}
        data = envelope.get("data") or {}
        if envelope.get("type") == GenerationRequested.TYPE and data.get("user_id") == user_id:
            return 200, queued_view(job_id, data)
    try:
        body = resp.json()
    except ValueError:
        body = error_body("upstream_error", "unexpected answer from the generator")
    return resp.status_code, body


def token_of(authorization: str | None, token: str | None) -> str:
    if token:
        return token
    return bearer_token(authorization)


# ------------------------------------------------------------------------------------------------ routes
@router.post(
    "/generate",
    status_code=202,
    response_model=GenerationAccepted,
    summary="Start a generation job (202) — or preview it with dry_run",
    responses={
        200: {"description": "dry_run: rendered prompts, provider request body, cost range"},
        **ERRORS,
    },
)
async def create_job(
    body: GenerationCreate,
    ctx: Context,
    user: CurrentUser,
    response: Response,
    authorization: Annotated[str | None, Header()] = None,
) -> Any:
    token = bearer_token(authorization)
    command, pricing = await build_command(ctx, body, user, token)
    if body.dry_run:
        return await preview(ctx, command, pricing, token)
    await enqueue(ctx, command, message_id=command.job_id)
    response.headers["Location"] = f"/generate/{command.job_id}"
    return GenerationAccepted(job_id=command.job_id, links=links(command.job_id))


@router.post(
    "/generate/preview",
    summary="Preview a job: rendered prompts of the first items, exact provider request body, cost range",
    responses=ERRORS,
)
async def preview_job(
    body: GenerationCreate,
    ctx: Context,
    user: CurrentUser,
    authorization: Annotated[str | None, Header()] = None,
) -> Any:
    token = bearer_token(authorization)
    command, pricing = await build_command(ctx, body, user, token)
    return await preview(ctx, command, pricing, token)


@router.post(
    "/generate/batch",
    status_code=202,
    response_model=BatchAccepted,
    summary="Start several jobs at once (all validated first; one job id per request)",
    responses=ERRORS,
)
async def create_batch(
    body: BatchCreate,
    ctx: Context,
    user: CurrentUser,
    authorization: Annotated[str | None, Header()] = None,
) -> BatchAccepted:
    token = bearer_token(authorization)
    commands: list[GenerationRequested] = []
    for i, job in enumerate(body.jobs):
        if job.dry_run:
            raise Unprocessable("dry_run is not supported in a batch", details={"job": i})
        try:
            command, _ = await build_command(ctx, job, user, token)
        except AppError as exc:
            exc.details = {"job": i, "error": exc.details}
            exc.message = f"job {i}: {exc.message}"
            raise
        commands.append(command)
    for command in commands:
        await enqueue(ctx, command, message_id=command.job_id)
    return BatchAccepted(jobs=[GenerationAccepted(job_id=c.job_id, links=links(c.job_id)) for c in commands])


@router.get("/generate/{job_id}", response_model=JobPublic, summary="Status of a job", responses=ERRORS)
async def get_job(
    job_id: str,
    request: Request,
    ctx: Context,
    user: CurrentUser,
    authorization: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    status, body = await job_status(request, ctx, job_id, bearer_token(authorization), user.user_id)
    return JSONResponse(body, status_code=status)


@router.get(
    "/generate/{job_id}/result",
    response_model=ResultPublic,
    summary="Items of a job: {items: [{index, data, attempts, usage}], total}",
    responses=ERRORS,
)
async def get_result(
    job_id: str,
    ctx: Context,
    _user: CurrentUser,
    authorization: Annotated[str | None, Header()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    include: Annotated[
        str | None, Query(pattern=r"^rejected$", description="'rejected' adds rejected items")
    ] = None,
) -> JSONResponse:
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if include:
        params["include"] = include
    resp = await ctx.upstreams.request(
        "generator",
        "GET",
        f"/generate/{job_id}/result",
        params=params,
        headers=_auth_header(bearer_token(authorization)),
    )
    return _relay(resp)


@router.delete(
    "/generate/{job_id}",
    status_code=202,
    response_model=CancelAccepted,
    summary="Cancel a job: in-flight calls are abandoned, finished items kept, status becomes cancelled",
    responses={409: {"description": "The job already ended."}, **ERRORS},
)
async def cancel_job(
    job_id: str,
    request: Request,
    ctx: Context,
    user: CurrentUser,
    authorization: Annotated[str | None, Header()] = None,
) -> CancelAccepted:
    status, body = await job_status(request, ctx, job_id, bearer_token(authorization), user.user_id)
    if status == 404:
        raise NotFound("generation job not found", details={"job_id": job_id})
    if status != 200:
        raise AppError(
            body.get("error", {}).get("message", "job status unavailable"),
            status_code=status,
            code="upstream_error",
        )
    if body.get("status") in TERMINAL:
        raise Conflict(f"the job already ended ({body.get('status')})", code="job_finished")
    await enqueue(ctx, GenerationCancelRequested(job_id=job_id, user_id=user.user_id))
    return CancelAccepted(job_id=job_id)


@router.get(
    "/generate/{job_id}/events",
    summary="Server-Sent Events: the current state, then every event of the job until it ends",
    description="Token as `Authorization: Bearer` or `?token=` (EventSource cannot set headers). Events: "
    "`snapshot` (the job status), then `started`, `item_generated`, `item_rejected`, `progress`, and one of "
    "`completed` / `failed` / `cancelled`, after which the stream ends. Each data is `{id, type, time, data}`.",
    responses={200: {"content": {"text/event-stream": {}}}, **ERRORS},
)
async def job_events(
    job_id: str,
    request: Request,
    ctx: Context,
    authorization: Annotated[str | None, Header()] = None,
    token: Annotated[str | None, Query(description="Access token (alternative to the header).")] = None,
) -> EventSourceResponse:
    raw = token_of(authorization, token)
    user = await ctx.verifier.verify(raw)
    watch = JobWatch(request, ctx, job_id, raw, user.user_id)
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


class JobWatch:
    """Replay-then-stream of one job for one client (shared by SSE and WebSocket).

    Subscribes to the hub BEFORE reading the state, so nothing published in between is lost; events already
    reflected in the snapshot may be delivered again (clients treat events as idempotent by id/index). While
    idle, the state is re-read every ``poll_s`` so a terminal event missed by this replica still ends the
    stream.
    """

    def __init__(
        self, request: Any, ctx: GatewayContext, job_id: str, token: str, user_id: str, poll_s: float = 5.0
    ) -> None:
        self.request = request
        self.ctx = ctx
        self.job_id = job_id
        self.token = token
        self.user_id = user_id
        self.poll_s = poll_s
        self.key = f"job:{job_id}"
        self.queue: asyncio.Queue[dict[str, Any]] | None = None

    async def open(self) -> dict[str, Any]:
        self.queue = self.ctx.hub.subscribe(self.key)
        try:
            status, body = await job_status(self.request, self.ctx, self.job_id, self.token, self.user_id)
        except BaseException:
            self.close()
            raise
        if status != 200:
            self.close()
            if status == 404:
                raise NotFound("generation job not found", details={"job_id": self.job_id})
            raise AppError(
                (body.get("error") or {}).get("message", "job status unavailable"),
                status_code=status,
                code="upstream_error",
            )
        return body

    @staticmethod
    def snapshot_event(body: dict[str, Any]) -> dict[str, Any]:
        return {"id": None, "type": "snapshot", "time": datetime.now(UTC).isoformat(), "data": body}

    async def events(self, snapshot: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        assert self.queue is not None
        yield self.snapshot_event(snapshot)
        if snapshot.get("status") in TERMINAL:
            return
        while True:
            try:
                event = await asyncio.wait_for(self.queue.get(), timeout=self.poll_s)
            except TimeoutError:
                status, body = await job_status(self.request, self.ctx, self.job_id, self.token, self.user_id)
                if status == 200 and body.get("status") in TERMINAL:
                    yield self.snapshot_event(body)
                    return
                continue
            yield event
            if event.get("type") in TERMINAL_EVENT_TYPES:
                return

    def close(self) -> None:
        if self.queue is not None:
            with contextlib.suppress(Exception):
                self.ctx.hub.unsubscribe(self.key, self.queue)
            self.queue = None
