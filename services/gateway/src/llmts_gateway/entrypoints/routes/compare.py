"""``/generate/compare*``: model comparison (issue 18 #6) — the same template and items on 2–5 models.

- ``POST /generate/compare`` starts one ordinary job per model (``count = sample``, the same job seed), admitted
  against the caller's quota like a batch (the sum of the samples), and answers **202** with the comparison id and
  the job ids.
- ``GET /generate/compare/{id}`` answers the side-by-side report (each job's status and figures, its first items;
  the winner and the ``POST /generate`` body of the full job on it once every job has ended).
- ``DELETE /generate/compare/{id}`` cancels its jobs still running (202).

A comparison is private: another user's is 404 ``comparison_not_found``. The rules are in
``llmts_gateway.compare_handlers`` and ``llmts_gateway.domain.compare``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Response

from llmts_api.compare import (
    COMPARISON_ID,
    CompareAccepted,
    CompareCancelled,
    CompareCreate,
    CompareQuery,
    CompareReport,
)
from llmts_common.auth import bearer_token
from llmts_common.query import reject_unknown_query
from llmts_gateway import compare_handlers
from llmts_gateway.deps import Comparisons, CurrentUser, Jobs
from llmts_gateway.entrypoints.openapi import error_cases
from llmts_gateway.entrypoints.routes.generate import ERRORS as JOB_ERRORS

router = APIRouter(tags=["generation"], dependencies=[Depends(reject_unknown_query)])

_MISSING = ("comparison_not_found", "comparison not found", {"comparison_id": COMPARISON_ID})
ERRORS: dict[int | str, dict[str, Any]] = {
    **JOB_ERRORS,
    404: error_cases(
        "Unknown comparison (or another user's); POST: unknown template.",
        comparison=_MISSING,
        template=("template_not_found", "template 't_0000' not found", {"template_id": "t_0000"}),
    ),
}
_ENDED: dict[int | str, dict[str, Any]] = {
    409: error_cases(
        "Every job of the comparison already ended.",
        ended=(
            "comparison_finished",
            "every job of the comparison already ended",
            {"comparison_id": COMPARISON_ID},
        ),
    )
}
Authorization = Annotated[str | None, Header()]
ComparisonId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@router.post(
    "/generate/compare",
    status_code=202,
    response_model=CompareAccepted,
    summary="Compare 2–5 models on the same items: one job per model (202)",
    description="Each model runs an ordinary job of the template with `count = sample` and the same `seed` "
    "(random when not given), so every model gets the same items' variables. The jobs are admitted against "
    "your quota together (all or none). The comparison's cache is off unless asked: a cached answer measures no "
    "model.",
    responses=ERRORS,
)
async def start_comparison(
    body: CompareCreate,
    jobs: Jobs,
    store: Comparisons,
    user: CurrentUser,
    response: Response,
    authorization: Authorization = None,
) -> CompareAccepted:
    accepted = await compare_handlers.start(
        body, user_id=user.user_id, token=bearer_token(authorization), deps=jobs, store=store
    )
    response.headers["Location"] = accepted.links.self
    return accepted


@router.get(
    "/generate/compare/{comparison_id}",
    response_model=CompareReport,
    summary="The side-by-side report of a comparison (what is known while its jobs run)",
    description="Per model: the job's status, first-try validity, repairs per item, cost per valid item, "
    "latency p50/p95 of the calls, tokens, mean judge score (null without judge scores) and the first `items` "
    "accepted items (default 10, at most 50; `items_total` counts them all). `winner` (and `start`, the "
    "`POST /generate` body of the full job on it: add `count`) appear once every job has ended.",
    responses=ERRORS,
)
async def get_comparison(
    comparison_id: ComparisonId,
    query: Annotated[CompareQuery, Query()],
    jobs: Jobs,
    store: Comparisons,
    user: CurrentUser,
    authorization: Authorization = None,
) -> CompareReport:
    return await compare_handlers.report(
        comparison_id, query, user_id=user.user_id, token=bearer_token(authorization), deps=jobs, store=store
    )


@router.delete(
    "/generate/compare/{comparison_id}",
    status_code=202,
    response_model=CompareCancelled,
    summary="Cancel the comparison's jobs still running",
    responses={**_ENDED, **ERRORS},
)
async def cancel_comparison(
    comparison_id: ComparisonId,
    jobs: Jobs,
    store: Comparisons,
    user: CurrentUser,
    authorization: Authorization = None,
) -> CompareCancelled:
    return await compare_handlers.cancel(
        comparison_id, user_id=user.user_id, token=bearer_token(authorization), deps=jobs, store=store
    )
