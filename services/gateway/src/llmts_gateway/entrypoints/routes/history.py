"""``/history*``: the caller's generation jobs (generator service), with per-user totals."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from llmts_common.auth import bearer_token
from llmts_gateway.deps import Context, CurrentUser
from llmts_gateway.entrypoints.routes.generate import ERRORS, JobPublic, UsagePublic, _auth_header, _relay

router = APIRouter(tags=["history"])


class HistoryTotals(BaseModel):
    jobs: int
    items: int
    rejected: int
    attempts: int
    usage: UsagePublic


class HistoryPublic(BaseModel):
    model_config = ConfigDict(extra="allow")
    items: list[JobPublic]
    total: int
    limit: int
    offset: int
    totals: HistoryTotals = Field(description="Sums over every job matching the filters (the user's totals).")


class AttemptsSummary(BaseModel):
    model_config = ConfigDict(extra="allow")
    total: int
    by_outcome: dict[str, dict[str, Any]]
    items: list[dict[str, Any]]


class HistoryJobPublic(JobPublic):
    attempts: AttemptsSummary


@router.get(
    "/history", response_model=HistoryPublic, summary="My jobs, newest first, with totals", responses=ERRORS
)
async def history(
    ctx: Context,
    _user: CurrentUser,
    authorization: Annotated[str | None, Header()] = None,
    status: Annotated[
        Literal["queued", "running", "completed", "completed_with_errors", "failed", "cancelled"] | None,
        Query(),
    ] = None,
    template_id: Annotated[str | None, Query(max_length=64)] = None,
    model: Annotated[str | None, Query(max_length=300)] = None,
    from_: Annotated[
        datetime | None, Query(alias="from", description="Created at or after (ISO 8601).")
    ] = None,
    to: Annotated[datetime | None, Query(description="Created at or before (ISO 8601).")] = None,
    q: Annotated[
        str | None, Query(max_length=100, description="Text in template name, job id or model.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JSONResponse:
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    for key, value in (("status", status), ("template_id", template_id), ("model", model), ("q", q)):
        if value is not None:
            params[key] = value
    if from_ is not None:
        params["from"] = from_.isoformat()
    if to is not None:
        params["to"] = to.isoformat()
    resp = await ctx.upstreams.request(
        "generator", "GET", "/history", params=params, headers=_auth_header(bearer_token(authorization))
    )
    return _relay(resp)


@router.get(
    "/history/{job_id}",
    response_model=HistoryJobPublic,
    summary="One of my jobs with its per-attempt summary",
    responses=ERRORS,
)
async def history_job(
    job_id: str,
    ctx: Context,
    _user: CurrentUser,
    authorization: Annotated[str | None, Header()] = None,
    attempts_limit: Annotated[int, Query(ge=0, le=5000)] = 500,
) -> JSONResponse:
    resp = await ctx.upstreams.request(
        "generator",
        "GET",
        f"/history/{job_id}",
        params={"attempts_limit": attempts_limit},
        headers=_auth_header(bearer_token(authorization)),
    )
    return _relay(resp)
