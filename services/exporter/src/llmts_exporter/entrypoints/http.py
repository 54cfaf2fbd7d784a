"""HTTP entrypoint of the exporter (reached through the gateway): export status, download, listing, job lookup.

Every route needs the caller's access token (verified against the auth service's JWKS); an export or job of
another user answers 404 exactly like a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from llmts_common.auth import JwksVerifier, Principal, bearer_token
from llmts_common.errors import Conflict, NotFound
from llmts_exporter.domain.ports import ExportRecord, ExportRepository, FileStore, JobProjection
from llmts_exporter.handlers import download_path
from llmts_exporter.writers import FORMATS


@dataclass
class HttpContext:
    verifier: JwksVerifier
    jobs: JobProjection
    exports: ExportRepository
    store: FileStore


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


class ExportLinks(BaseModel):
    self: str
    download: str | None = Field(default=None, description="Present once the export is ready.")


class ExportPublic(BaseModel):
    export_id: str
    job_id: str
    format: str
    options: dict[str, object] = Field(default_factory=dict)
    status: Literal["queued", "running", "ready", "failed"]
    reason: str | None = Field(default=None, description="Why the export failed.")
    waiting: str | None = Field(default=None, description="What a queued export is waiting for.")
    bytes: int | None = None
    sha256: str | None = None
    items: int | None = None
    filename: str | None = None
    content_type: str | None = None
    created_at: datetime
    finished_at: datetime | None = None
    links: ExportLinks

    @classmethod
    def of(cls, r: ExportRecord) -> ExportPublic:
        status = r.status if r.status in ("queued", "running", "ready", "failed") else "queued"
        return cls(
            export_id=r.export_id,
            job_id=r.job_id,
            format=r.format,
            options=r.options,
            status=status,
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


class ExportsPublic(BaseModel):
    items: list[ExportPublic]
    count: int


class JobPublic(BaseModel):
    """What the exporter knows of a job (its own projection of generation events)."""

    job_id: str
    status: str | None
    terminal: bool
    requested: int
    succeeded: int
    rejected: int
    items_projected: int
    template_name: str | None = None


class FormatPublic(BaseModel):
    name: str
    content_type: str
    extension: str


class FormatsPublic(BaseModel):
    formats: list[FormatPublic]


router = APIRouter(tags=["exports"])


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
    ctx: Context,
    user: CurrentUser,
    job_id: Annotated[str | None, Query(max_length=200)] = None,
    format: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ExportsPublic:
    records = await ctx.exports.list_for(user.user_id, job_id=job_id, fmt=format, limit=limit)
    items = [ExportPublic.of(r) for r in records]
    return ExportsPublic(items=items, count=len(items))


@router.get("/exports/{export_id}", summary="Status of one export", responses=ERRORS)
async def get_export(export_id: str, ctx: Context, user: CurrentUser) -> ExportPublic:
    return ExportPublic.of(await _owned(ctx, export_id, user))


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
    record = await _owned(ctx, export_id, user)
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
async def get_job(job_id: str, ctx: Context, user: CurrentUser) -> JobPublic:
    job = await ctx.jobs.get(job_id)
    if job is None or not job.owned_by(user.user_id):
        raise NotFound("job not found", code="job_not_found")
    return JobPublic(
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
