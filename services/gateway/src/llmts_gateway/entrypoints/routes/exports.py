"""Exports: ``POST /exports`` (202), status, listing, download (streamed from the exporter), and the convenience
``GET /generate/{job_id}/export``.

The exporter owns the exports and knows job owners from its own projection of ``generation.events``. Commands go
through the gateway's outbox to ``export.commands``. Two windows where the exporter cannot know yet are covered
from that outbox, which the gateway owns: a job accepted moments ago (its ``GenerationRequested`` is in the
outbox, not yet projected) may be exported, and an export accepted moments ago (its ``ExportRequested`` is in the
outbox, not yet consumed) reads as ``queued`` rather than 404. Bodies, query parameters and answers are the public
contract's models (``llmts_api.exports``), the same classes the exporter declares; ``ExportAccepted`` (202) is
the gateway's own answer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict
from starlette.background import BackgroundTask

from llmts_api import examples as ex
from llmts_api.exports import (
    ExportCreate,
    ExportFormat,
    ExportLinks,
    ExportPublic,
    ExportsPublic,
    ExportsQuery,
    SignedDownloadQuery,
)
from llmts_common.auth import Principal
from llmts_common.contracts import ExportRequested, GenerationRequested
from llmts_common.envelope import new_id
from llmts_common.errors import AppError, NotFound, ServiceUnavailable
from llmts_common.logging import correlation_id_var
from llmts_common.query import reject_unknown_query
from llmts_common.tracing import current_traceparent
from llmts_gateway.deps import Context, CurrentUser, GatewayContext
from llmts_gateway.entrypoints.openapi import error_cases

router = APIRouter(tags=["exports"], dependencies=[Depends(reject_unknown_query)])

ACCEPTED_WINDOW = timedelta(hours=1)
"""How far back the outbox is consulted for commands the exporter may not have seen yet."""

_PASS_HEADERS = (
    "content-type",
    "content-disposition",
    "content-length",
    "x-checksum-sha256",
    "etag",
    "cache-control",
    "x-content-type-options",
)

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: error_cases(
        "Missing or invalid access token.", missing=("unauthorized", "missing bearer token", None)
    ),
    503: error_cases(
        "The exporter is unavailable.",
        down=("service_unavailable", "the exporter service is unavailable", {"service": "exporter"}),
    ),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: error_cases(
        "No such export or job (or it belongs to another user).",
        export=("export_not_found", "export not found", None),
        job=("job_not_found", "job not found", None),
    )
}


_FILE: dict[str, Any] = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
"""A download's body: the file (its real Content-Type is the export's)."""


class ExportAccepted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.EXPORT_ACCEPTED]})
    export_id: str
    status: Literal["queued", "running"]
    links: ExportLinks


# ------------------------------------------------------------------------------------------------- helpers


async def _accepted_commands(ctx: GatewayContext, message_type: str, **data: str) -> list[dict[str, Any]]:
    """``data`` of recent commands of ``message_type`` in the gateway's outbox matching every ``data`` field
    (newest first), each with the time it was accepted."""
    if ctx.outbox is None:
        return []
    found = await ctx.outbox.find_recent(
        message_type, since=datetime.now(UTC) - ACCEPTED_WINDOW, data=data, limit=50
    )
    return [{**m.envelope.data, "_accepted_at": m.created_at} for m in found]


def _queued(data: dict[str, Any]) -> ExportPublic:
    return ExportPublic(
        export_id=data["export_id"],
        job_id=data["job_id"],
        format=data["format"],
        options=data.get("options") or {},
        status="queued",
        waiting="accepted; waiting for the exporter",
        created_at=data["_accepted_at"],
        links=ExportLinks(self=f"/exports/{data['export_id']}"),
    )


def _auth(authorization: str | None) -> dict[str, str]:
    return {"authorization": authorization or ""}


async def _check_job_owner(
    ctx: GatewayContext, user: Principal, job_id: str, authorization: str | None
) -> None:
    """404 unless ``job_id`` is the caller's (per the exporter's projection, or accepted here moments ago)."""
    unavailable: ServiceUnavailable | None = None
    try:
        resp = await ctx.upstreams.request(
            "exporter", "GET", f"/jobs/{quote(job_id, safe='')}", headers=_auth(authorization)
        )
    except ServiceUnavailable as exc:
        unavailable = exc
    else:
        if resp.status_code == 200:
            return
        if resp.status_code != 404:
            raise _relay_error(resp)
    if await _accepted_commands(ctx, GenerationRequested.TYPE, job_id=job_id, user_id=user.user_id):
        return
    if unavailable is not None:
        raise unavailable
    raise NotFound("job not found", code="job_not_found")


def _relay_error(resp: httpx.Response) -> AppError:
    try:
        err = resp.json()["error"]
        return AppError(
            err["message"], code=err["code"], details=err.get("details"), status_code=resp.status_code
        )
    except (ValueError, KeyError, TypeError):
        return AppError("the exporter failed", code="upstream_error", status_code=502)


def _accepted_response(export_id: str, status: str = "queued") -> JSONResponse:
    body = ExportAccepted(
        export_id=export_id,
        status="running" if status == "running" else "queued",
        links=ExportLinks(self=f"/exports/{export_id}"),
    )
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=202,
        headers={"Location": f"/exports/{export_id}", "Retry-After": "1"},
    )


async def _request_export(
    ctx: GatewayContext, user: Principal, job_id: str, fmt: str, options: dict[str, Any]
) -> str:
    assert ctx.outbox is not None
    command = ExportRequested(
        export_id=new_id(), job_id=job_id, user_id=user.user_id, format=fmt, options=options
    )
    envelope = await ctx.outbox.add(command)
    await ctx.outbox.publish_one(envelope, ExportRequested.TOPIC)
    return command.export_id


async def _stream_download(
    ctx: GatewayContext,
    export_id: str,
    authorization: str | None,
    *,
    signed: dict[str, str] | None = None,
) -> Response:
    """Relay the exporter's download without holding the file in memory: with the owner's token, or (``signed``:
    ``expires`` and ``signature`` of an ExportReady link) through the exporter's signed route, which checks the
    link."""
    client = ctx.upstreams.clients["exporter"]
    headers = {"x-correlation-id": correlation_id_var.get() or ""}
    if signed is None:
        headers.update(_auth(authorization))
    traceparent = current_traceparent()
    if traceparent:
        headers["traceparent"] = traceparent
    quoted = quote(export_id, safe="")
    path = f"/downloads/{quoted}" if signed is not None else f"/exports/{quoted}/download"
    request = client.build_request("GET", path, headers=headers, params=signed)
    try:
        resp = await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(
            "the exporter service is unavailable",
            details={"service": "exporter", "error": type(exc).__name__},
        ) from exc
    if resp.status_code != 200:
        await resp.aread()
        await resp.aclose()
        raise _relay_error(resp)
    out = {k: v for k, v in resp.headers.items() if k.lower() in _PASS_HEADERS}
    return StreamingResponse(
        resp.aiter_raw(), status_code=200, headers=out, background=BackgroundTask(resp.aclose)
    )


# ------------------------------------------------------------------------------------------------- routes


@router.post(
    "/exports",
    status_code=202,
    summary="Request an export of a job's items",
    responses={
        **AUTH_ERRORS,
        **NOT_FOUND,
        202: {"model": ExportAccepted, "description": "Accepted: poll `links.self` until it is ready."},
        422: {"description": "Unknown format or invalid options."},
    },
)
async def create_export(
    body: ExportCreate,
    ctx: Context,
    user: CurrentUser,
    authorization: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Accepts the request (202) and returns the export id to poll; the file is built when the job has ended.

    An export of a job that is still running waits for it (bounded by the exporter's
    ``EXPORT_WAIT_FOR_JOB_SECONDS``), then fails with a reason if the job never ends.
    """
    await _check_job_owner(ctx, user, body.job_id, authorization)
    export_id = await _request_export(
        ctx, user, body.job_id, body.format, body.options.model_dump(exclude_defaults=True)
    )
    return _accepted_response(export_id)


@router.get("/exports", summary="The caller's exports, newest first", responses=AUTH_ERRORS)
async def list_exports(
    ctx: Context,
    user: CurrentUser,
    query: Annotated[ExportsQuery, Query()],
    authorization: Annotated[str | None, Header()] = None,
) -> ExportsPublic:
    job_id, format, limit = query.job_id, query.format, query.limit
    params = query.model_dump(exclude_none=True)
    resp = await ctx.upstreams.request(
        "exporter", "GET", "/exports", params=params, headers=_auth(authorization)
    )
    if resp.status_code != 200:
        raise _relay_error(resp)
    listed = ExportsPublic.model_validate(resp.json())
    known = {e.export_id for e in listed.items}
    filters = {
        "user_id": user.user_id,
        **({"job_id": job_id} if job_id else {}),
        **({"format": format} if format else {}),
    }
    pending = [
        _queued(d)
        for d in await _accepted_commands(ctx, ExportRequested.TYPE, **filters)
        if d["export_id"] not in known
    ]
    if query.offset:  # commands not yet seen by the exporter are the newest: they lead the first page only
        return listed
    items = (pending + listed.items)[:limit]
    return ExportsPublic(items=items, total=listed.total + len(pending), limit=limit, offset=0)


@router.get("/exports/{export_id}", summary="Status of one export", responses={**AUTH_ERRORS, **NOT_FOUND})
async def get_export(
    export_id: str,
    ctx: Context,
    user: CurrentUser,
    authorization: Annotated[str | None, Header()] = None,
) -> ExportPublic:
    resp = await ctx.upstreams.request(
        "exporter", "GET", f"/exports/{quote(export_id, safe='')}", headers=_auth(authorization)
    )
    if resp.status_code == 200:
        return ExportPublic.model_validate(resp.json())
    if resp.status_code == 404:
        pending = await _accepted_commands(
            ctx, ExportRequested.TYPE, export_id=export_id, user_id=user.user_id
        )
        if pending:
            return _queued(pending[0])
    raise _relay_error(resp)


@router.get(
    "/exports/{export_id}/download",
    summary="Download a ready export (streamed)",
    response_class=StreamingResponse,
    responses={
        **AUTH_ERRORS,
        **NOT_FOUND,
        200: {
            "description": "The file, with its Content-Type and an RFC 5987 Content-Disposition.",
            "content": _FILE,
        },
        409: error_cases(
            "The export is not ready (queued, running or failed).",
            not_ready=("export_not_ready", "export is running", {"status": "running", "reason": None}),
        ),
    },
)
async def download_export(
    export_id: str,
    ctx: Context,
    _user: CurrentUser,  # authenticated here; the exporter checks ownership
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    return await _stream_download(ctx, export_id, authorization)


@router.get(
    "/downloads/{export_id}",
    summary="Download a ready export with the signed link of ExportReady (no access token)",
    response_class=StreamingResponse,
    responses={
        200: {"description": "The file, with its Content-Type and Content-Disposition.", "content": _FILE},
        403: error_cases(
            "The link expired or was changed.",
            expired=("link_expired", "the download link has expired; ask for the export again", None),
            invalid=("link_invalid", "the download link is not valid", None),
        ),
        404: error_cases("No such export.", export=("export_not_found", "export not found", None)),
        503: AUTH_ERRORS[503],
    },
)
async def download_signed(
    export_id: str,
    ctx: Context,
    link: Annotated[SignedDownloadQuery, Query()],
) -> Response:
    """The ``download_url`` of an ``ExportReady`` event: public (the signature is the credential, checked by the
    exporter), valid until ``download_expires_at``; 403 ``link_expired`` / ``link_invalid`` otherwise."""
    return await _stream_download(
        ctx, export_id, None, signed={"expires": link.expires, "signature": link.signature}
    )


@router.get(
    "/generate/{job_id}/export",
    summary="Download a job's export at once, or request it",
    response_class=StreamingResponse,
    responses={
        **AUTH_ERRORS,
        **NOT_FOUND,
        200: {"description": "A ready export of this job and format, streamed.", "content": _FILE},
        202: {
            "model": ExportAccepted,
            "description": "Being built: poll the `Location` (an export status) until it is ready.",
        },
    },
)
async def export_job(
    job_id: str,
    ctx: Context,
    user: CurrentUser,
    authorization: Annotated[str | None, Header()] = None,
    format: Annotated[ExportFormat, Query()] = "json",
) -> Response:
    """Returns the file when an export of this job in this format (default options) is ready; otherwise
    answers 202 with ``Location`` to poll, requesting the export if none is under way."""
    known: set[str] = set()
    try:
        resp = await ctx.upstreams.request(
            "exporter",
            "GET",
            "/exports",
            params={"job_id": job_id, "format": format, "limit": 50},
            headers=_auth(authorization),
        )
    except ServiceUnavailable:
        resp = None
    if resp is not None and resp.status_code == 200:
        exports = [e for e in ExportsPublic.model_validate(resp.json()).items if not e.options]
        known = {e.export_id for e in exports}
        ready = next((e for e in exports if e.status == "ready"), None)
        if ready is not None:
            return await _stream_download(ctx, ready.export_id, authorization)
        busy = next((e for e in exports if e.status in ("queued", "running")), None)
        if busy is not None:
            return _accepted_response(busy.export_id, busy.status)
    for data in await _accepted_commands(
        ctx, ExportRequested.TYPE, user_id=user.user_id, job_id=job_id, format=format
    ):
        if data["export_id"] not in known and not data.get("options"):
            return _accepted_response(data["export_id"])
    await _check_job_owner(ctx, user, job_id, authorization)
    return _accepted_response(await _request_export(ctx, user, job_id, format, {}))
