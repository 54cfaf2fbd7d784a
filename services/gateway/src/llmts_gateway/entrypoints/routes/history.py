"""``/history*``: the caller's generation jobs (generator service), with per-user totals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse

from llmts_api.generation import HistoryJobPublic, HistoryPublic, HistoryQuery
from llmts_common.auth import bearer_token
from llmts_common.query import reject_unknown_query
from llmts_gateway import handlers
from llmts_gateway.deps import CurrentUser, Jobs
from llmts_gateway.entrypoints.relay import relay
from llmts_gateway.entrypoints.routes.generate import ERRORS

router = APIRouter(tags=["history"], dependencies=[Depends(reject_unknown_query)])


@router.get(
    "/history", response_model=HistoryPublic, summary="My jobs, newest first, with totals", responses=ERRORS
)
async def history(
    jobs: Jobs,
    _user: CurrentUser,
    query: Annotated[HistoryQuery, Query()],
    authorization: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    return relay(await handlers.history(query, token=bearer_token(authorization), deps=jobs))


@router.get(
    "/history/{job_id}",
    response_model=HistoryJobPublic,
    summary="One of my jobs with its per-attempt summary",
    responses=ERRORS,
)
async def history_job(
    job_id: str,
    jobs: Jobs,
    _user: CurrentUser,
    authorization: Annotated[str | None, Header()] = None,
    attempts_limit: Annotated[int, Query(ge=0, le=5000)] = 500,
) -> JSONResponse:
    token = bearer_token(authorization)
    return relay(await handlers.history_job(job_id, attempts_limit=attempts_limit, token=token, deps=jobs))
