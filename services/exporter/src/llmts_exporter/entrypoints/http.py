"""HTTP entrypoint of the exporter (reached through the gateway): export status, download, listing, job lookup.

Every route but ``/downloads/{export_id}`` needs the caller's access token (verified against the auth service's
JWKS); an export or job of another user answers 404 exactly like a missing one. ``/downloads/{export_id}`` takes
the signed link of ``ExportReady`` instead (``domain.links``): 403 ``link_expired`` / ``link_invalid`` otherwise. Query parameters and answers are the public contract's
models (``llmts_api.exports``), the same classes the gateway declares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.responses import StreamingResponse

from llmts_api.exports import (
    ExportLinks,
    ExportPublic,
    ExportsPublic,
    ExportsQuery,
    ExportStatus,
    FormatPublic,
    FormatsPublic,
    JobProjectionPublic,
    SignedDownloadQuery,
)
from llmts_common.auth import JwksVerifier, Principal, bearer_token
from llmts_common.envelope import utcnow
from llmts_common.errors import Conflict, Forbidden, NotFound
from llmts_common.query import reject_unknown_query
from llmts_exporter.domain.links import DownloadLinks, LinkRefused
from llmts_exporter.domain.ports import Clock, ExportRecord, ExportRepository, FileStore, JobProjection
from llmts_exporter.handlers import download_path
from llmts_exporter.writers import FORMATS


@dataclass
class HttpContext:
    verifier: JwksVerifier
    jobs: JobProjection
    exports: ExportRepository
    store: FileStore
    links: DownloadLinks | None = None
    clock: Clock = utcnow


async def get_context(request: Request) -> HttpContext:
    ctx: HttpContext = request.app.state.http
    return ctx


Context = Annotated[HttpContext, Depends(get_context)]


async def current_user(ctx: Context, authorization: Annotated[str | None, Header()] = None) -> Principal:
    return await ctx.verifier.verify(bearer_token(authorization))


CurrentUser = Annotated[Principal, Depends(current_user)]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid access token."},
    404: {"description": "No such export (or it belongs to another user)."},
}


_STATUSES: dict[str, ExportStatus] = {s: s for s in ("queued", "running", "ready", "failed")}


def export_public(r: ExportRecord) -> ExportPublic:
    """The public view of an export; an unknown stored status reads as ``queued``."""
    return ExportPublic(
        export_id=r.export_id,
        job_id=r.job_id,
        format=r.format,
        options=r.options,
        status=_STATUSES.get(r.status, "queued"),
        reason=r.reason,
        waiting=r.waiting if r.status == "queued" else None,
        bytes=r.bytes,
        sha256=r.sha256,
        items=r.items,
        filename=r.filename,
        content_type=r.content_type,
        created_at=r.created_at,
        finished_at=r.finished_at,
        links=ExportLinks(
            self=f"/exports/{r.export_id}",
            download=download_path(r.export_id) if r.status == "ready" else None,
        ),
    )


router = APIRouter(tags=["exports"], dependencies=[Depends(reject_unknown_query)])


async def _owned(ctx: HttpContext, export_id: str, user: Principal) -> ExportRecord:
    record = await ctx.exports.get(export_id)
    if record is None or record.user_id != user.user_id:
        raise NotFound("export not found", code="export_not_found")
    return record


@router.get("/formats", summary="Export formats this exporter writes")
async def list_formats() -> FormatsPublic:
    return FormatsPublic(
        formats=[
            FormatPublic(name=name, content_type=spec.content_type, extension=spec.extension)
            for name, spec in FORMATS.items()
        ]
    )


@router.get("/exports", summary="The caller's exports, newest first", responses={401: ERRORS[401]})
async def list_exports(
    ctx: Context, user: CurrentUser, query: Annotated[ExportsQuery, Query()]
) -> ExportsPublic:
    records, total = await ctx.exports.list_for(
        user.user_id, job_id=query.job_id, fmt=query.format, limit=query.limit, offset=query.offset
    )
    return ExportsPublic(
        items=[export_public(r) for r in records], total=total, limit=query.limit, offset=query.offset
    )


@router.get("/exports/{export_id}", summary="Status of one export", responses=ERRORS)
async def get_export(export_id: str, ctx: Context, user: CurrentUser) -> ExportPublic:
    return export_public(await _owned(ctx, export_id, user))


@router.get(
    "/exports/{export_id}/download",
    summary="Download a ready export",
    response_class=StreamingResponse,
    responses={
        **ERRORS,
        200: {"description": "The file, streamed.", "content": {"application/octet-stream": {}}},
        409: {"description": "The export is not ready (queued, running or failed)."},
    },
)
async def download_export(export_id: str, ctx: Context, user: CurrentUser) -> StreamingResponse:
    return await _file_response(ctx, await _owned(ctx, export_id, user))


@router.get(
    "/downloads/{export_id}",
    summary="Download a ready export with the signed link of ExportReady (no access token)",
    response_class=StreamingResponse,
    responses={
        200: {"description": "The file, streamed.", "content": {"application/octet-stream": {}}},
        403: {"description": "The link expired (link_expired) or is not ours (link_invalid)."},
        404: {"description": "No such export, or its file is gone."},
        409: {"description": "The export is not ready."},
    },
)
async def download_signed(
    export_id: str,
    ctx: Context,
    link: Annotated[SignedDownloadQuery, Query()],
) -> StreamingResponse:
    if ctx.links is None:
        raise Forbidden("download links are not enabled on this exporter", code="link_invalid")
    try:
        ctx.links.verify(export_id, link.expires, link.signature, ctx.clock())
    except LinkRefused as refused:
        raise Forbidden(refused.message, code=refused.code) from None
    record = await ctx.exports.get(export_id)
    if record is None:
        raise NotFound("export not found", code="export_not_found")
    return await _file_response(ctx, record)


async def _file_response(ctx: HttpContext, record: ExportRecord) -> StreamingResponse:
    if record.status != "ready":
        raise Conflict(
            f"export is {record.status}" + (f": {record.reason}" if record.reason else ""),
            code="export_not_ready",
            details={"status": record.status, "reason": record.reason},
        )
    key = record.file_key or record.export_id
    size = await ctx.store.size(key)
    if size is None:
        raise NotFound("the export's file is gone (expired)", code="export_file_missing")
    headers = {
        "Content-Disposition": f'attachment; filename="{record.filename}"; filename*={record.filename_star}',
        "Content-Length": str(size),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
    }
    if record.sha256:
        headers["X-Checksum-Sha256"] = record.sha256
        headers["ETag"] = f'"{record.sha256}"'
    return StreamingResponse(
        ctx.store.read(key), media_type=record.content_type or "application/octet-stream", headers=headers
    )


@router.get(
    "/jobs/{job_id}",
    summary="A job as the exporter knows it (ownership check of the gateway)",
    responses={**ERRORS, 404: {"description": "Unknown job, or a job of another user."}},
)
async def get_job(job_id: str, ctx: Context, user: CurrentUser) -> JobProjectionPublic:
    job = await ctx.jobs.get(job_id)
    if job is None or not job.owned_by(user.user_id):
        raise NotFound("job not found", code="job_not_found")
    return JobProjectionPublic(
        job_id=job.job_id,
        status=job.status,
        terminal=job.terminal,
        requested=job.requested,
        succeeded=job.succeeded,
        rejected=job.rejected,
        items_projected=await ctx.jobs.count_items(job_id),
        template_name=job.template_name,
    )


def mount(app: FastAPI, ctx: HttpContext) -> None:
    app.state.http = ctx
    app.include_router(router)
