"""HTTP API of the generator (behind the gateway). Owner only: the forwarded bearer token is verified here and
another user's job answers 404, exactly like a job that does not exist.

- ``GET /generate/{job_id}``: status, counts, usage, model, template, timings, stop reason.
- ``GET /generate/{job_id}/result?limit&offset&include=rejected``: ``{items, total}``.
- ``GET /history`` and ``GET /history/{job_id}`` (the latter with a per-attempt summary).
- ``POST /preview``: rendered prompts + exact provider request body + cost estimate (no job).
- ``GET /internal/generate/{job_id}`` and ``GET /internal/generate/{job_id}/items?after=&limit=``: for services
  (the exporter) that read a job without a user token: header ``X-Internal-Token`` (required: without a
  configured ``INTERNAL_TOKEN`` they answer 403, with a missing/wrong one 401), keyset pages in index order.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query

from llmts_api.generation import (
    GenerationPreviewPublic,
    GenerationPreviewRequest,
    HistoryJobPublic,
    HistoryPublic,
    HistoryQuery,
    ItemsPage,
    JobPublic,
    ResultPublic,
    ResultQuery,
)
from llmts_api.paging import MAX_ITEM_INDEX
from llmts_common.auth import JwksVerifier, bearer_token
from llmts_common.contracts import GenerationRequested
from llmts_common.errors import InvalidField, NotFound, Unprocessable
from llmts_common.internal import check_internal_token
from llmts_common.query import reject_unknown_query
from llmts_generator.domain import state
from llmts_generator.domain.caching import job_seed
from llmts_generator.domain.costs import cost_summary, spend_by_kind
from llmts_generator.domain.itemvars import SeedRows
from llmts_generator.domain.ports import GenerationRepository
from llmts_generator.domain.repair import MAX_ERROR_CHARS, MAX_ERRORS, repair_instruction
from llmts_generator.domain.requests import Renderer, RequestShape, render_items
from llmts_generator.domain.tasks import expand_tasks
from llmts_generator.entrypoints.views import (
    attempt_view,
    attempts_by_model,
    attempts_by_outcome,
    attempts_by_stage,
    item_view,
    job_view,
)
from llmts_generator.itemdraws import preview_draws
from llmts_generator.manager import JobManager
from llmts_generator.stages import estimate_with_stages, preview_stages
from llmts_providers import Provider
from llmts_providers.estimate import estimate_prompt_tokens, estimate_text_tokens, pricing_from
from llmts_providers.preview import preview_estimate
from llmts_templating import RenderError

ProviderResolver = Callable[[str, str | None], Awaitable[tuple[Provider, str]]]


# the longest repair instruction a repair call adds (every shown error at its clipped length), for the estimate
REPAIR_PROMPT_TOKENS = estimate_text_tokens(
    repair_instruction([{"path": "", "message": "x" * MAX_ERROR_CHARS}] * MAX_ERRORS)
)

_JOB_FIELDS = {"request": 0, "_items": 0, "_attempts": 0, "_outbox": 0}


@dataclass(frozen=True)
class Access:
    """Who may read which job: the owner through a verified bearer token, or a service through the internal token."""

    repo: GenerationRepository
    manager: JobManager
    verifier: JwksVerifier
    internal_token: str | None

    async def user_id_of(self, authorization: str | None) -> str:
        principal = await self.verifier.verify(bearer_token(authorization))
        return principal.user_id

    async def job(self, job_id: str) -> dict[str, Any]:
        doc = await self.repo.get_job(job_id, _JOB_FIELDS)
        if doc is None:
            raise NotFound("generation job not found", code="job_not_found", details={"job_id": job_id})
        return doc

    async def owned_job(self, job_id: str, authorization: str | None) -> dict[str, Any]:
        user_id = await self.user_id_of(authorization)
        doc = await self.repo.get_job(job_id, _JOB_FIELDS)
        if doc is None or doc.get("user_id") != user_id:
            raise NotFound("generation job not found", code="job_not_found", details={"job_id": job_id})
        return doc

    async def internal_job(self, job_id: str, token: str | None) -> dict[str, Any]:
        """A service's read of any job: only with the internal token (``llmts_common.internal``)."""
        check_internal_token(self.internal_token, token)
        return await self.job(job_id)

    def in_flight(self, job_id: str) -> int | None:
        runner = self.manager.runner(job_id)
        if runner is None or runner.scheduler is None:
            return None
        return len(runner.scheduler.in_flight) + len(runner.scheduler.judging)  # generated or judged

    def rate(self, job_id: str) -> float | None:
        """Valid items per second lately, when the job runs in this process."""
        runner = self.manager.runner(job_id)
        return runner.rate.rate(time.monotonic()) if runner is not None else None

    def view(self, doc: dict[str, Any], job_id: str) -> dict[str, Any]:
        """The job's status view with the live figures of its runner when it runs here."""
        return job_view(doc, self.in_flight(job_id), self.concurrency(job_id), self.rate(job_id))

    def concurrency(self, job_id: str) -> dict[str, dict[str, Any]] | None:
        """Calls at once to the provider the job calls now, when it runs in this process."""
        runner = self.manager.runner(job_id)
        if runner is None or runner.chain is None:
            return None
        return runner.chain.concurrency()


def build_router(
    *,
    repo: GenerationRepository,
    manager: JobManager,
    verifier: JwksVerifier,
    resolve_provider: ProviderResolver,
    renderer: Renderer,
    internal_token: str | None,
    reconcile_threshold: int = 0,
) -> APIRouter:
    """``reconcile_threshold``: the cost reconciler's sample threshold (``domain/costs``), for the history's
    pending count."""
    access = Access(repo=repo, manager=manager, verifier=verifier, internal_token=internal_token)
    router = APIRouter(dependencies=[Depends(reject_unknown_query)])
    _job_routes(router, access)
    _history_routes(router, access, reconcile_threshold)
    _preview_route(router, access, resolve_provider, renderer)
    _internal_routes(router, access)
    return router


def _job_routes(router: APIRouter, access: Access) -> None:
    @router.get(
        "/generate/{job_id}",
        tags=["generation"],
        summary="Status of a job",
        response_model=JobPublic,
        response_model_exclude_unset=True,
    )
    async def get_job(job_id: str, authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        doc = await access.owned_job(job_id, authorization)
        return access.view(doc, job_id)

    @router.get(
        "/generate/{job_id}/result",
        tags=["generation"],
        summary="Items of a job",
        response_model=ResultPublic,
        response_model_exclude_unset=True,
    )
    async def get_result(
        job_id: str,
        query: Annotated[ResultQuery, Query()],
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        doc = await access.owned_job(job_id, authorization)
        items, total = await access.repo.list_items(
            job_id, include_rejected=query.include == "rejected", limit=query.limit, offset=query.offset
        )
        return {
            "job_id": job_id,
            "status": doc.get("status"),
            "items": [item_view(d) for d in items],
            "total": total,
            "limit": query.limit,
            "offset": query.offset,
        }


def _history_routes(router: APIRouter, access: Access, reconcile_threshold: int) -> None:
    @router.get(
        "/history",
        tags=["history"],
        summary="The caller's jobs, newest first, with totals",
        response_model=HistoryPublic,
        response_model_exclude_unset=True,
    )
    async def history(
        query: Annotated[HistoryQuery, Query()],
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        user_id = await access.user_id_of(authorization)
        filters = {
            "status": query.status,
            "template_id": query.template_id,
            "model": query.model,
            "from": query.from_,
            "to": query.to,
            "q": query.q,
        }
        docs, total, totals = await access.repo.history(
            user_id, filters, limit=query.limit, offset=query.offset
        )
        return {
            "items": [job_view(d, access.in_flight(str(d["_id"]))) for d in docs],
            "total": total,
            "limit": query.limit,
            "offset": query.offset,
            "totals": totals,
        }

    @router.get(
        "/history/{job_id}",
        tags=["history"],
        summary="One job with its per-attempt summary",
        response_model=HistoryJobPublic,
        response_model_exclude_unset=True,
    )
    async def history_job(
        job_id: str,
        authorization: Annotated[str | None, Header()] = None,
        attempts_limit: Annotated[int, Query(ge=0, le=5000)] = 500,
    ) -> dict[str, Any]:
        doc = await access.owned_job(job_id, authorization)
        attempts = await access.repo.attempts_of(job_id, limit=100_000)
        return {
            **access.view(doc, job_id),
            "diversity": doc.get("diversity"),  # the latest completed round's report (diversity_run.py)
            "attempts": {
                "total": len(attempts),
                "by_outcome": attempts_by_outcome(attempts),
                "by_model": attempts_by_model(attempts),
                "by_stage": attempts_by_stage(attempts),
                "items": [attempt_view(a) for a in attempts[:attempts_limit]],
            },
            "costs": {
                **cost_summary(attempts, threshold=reconcile_threshold),
                "by_kind": spend_by_kind(attempts),
            },
        }


def _preview_route(
    router: APIRouter,
    access: Access,
    resolve_provider: ProviderResolver,
    renderer: Renderer,
) -> None:
    @router.post(
        "/preview",
        tags=["generation"],
        summary="Render the first items of a would-be job (no job)",
        response_model=GenerationPreviewPublic,
        response_model_exclude_unset=True,
    )
    async def preview(
        body: GenerationPreviewRequest, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        await access.user_id_of(authorization)
        # the seed rows the jobs read (RunnerDeps.datasets): a preview draws what the job would
        return await preview_job(body, resolve_provider, renderer, access.manager.deps.datasets)


async def preview_job(
    body: GenerationPreviewRequest,
    resolve_provider: ProviderResolver,
    renderer: Renderer,
    datasets: SeedRows | None = None,
) -> dict[str, Any]:
    """The first ``body.items`` items of a would-be job, rendered into the provider's exact request bodies, and
    the job's cost estimate (the largest rendered prompt × count, repairs included). Items get their seed rows and
    sampled values as the job would (drawn with the request's ``seed``; without one, a preview seed)."""
    raw = dict(body.request)
    raw.setdefault("job_id", "preview")
    raw.setdefault("requested_at", datetime.now(UTC).isoformat())
    try:
        req = GenerationRequested.model_validate(raw)
    except Exception as exc:
        raise InvalidField(f"invalid preview request: {exc}"[:500], loc=("body", "request")) from exc
    try:
        provider, model_id = await resolve_provider(req.model.id, req.model.provider)
    except Exception as exc:
        raise Unprocessable(f"unknown model {req.model.id!r}: {exc}"[:500], code="unknown_model") from exc
    plan = expand_tasks(req.tasks or req.template.tasks)
    shape = RequestShape.of(req, model_id)
    rendered = []
    now = datetime.now(UTC)
    prompt_tokens = 0
    targets = range(min(body.items, req.count))
    draws = await preview_draws(req, job_seed(req.seed, req.job_id), datasets, targets)
    try:  # all items in one render call: one hard deadline for the whole preview, off the event loop
        items = await render_items(renderer, req, plan, targets, job_id=req.job_id, now=now, draws=draws)
        stages = await preview_stages(renderer, req, items, provider, shape)  # placeholder outputs
    except RenderError as exc:
        raise Unprocessable(
            f"the template could not be rendered: {exc}", code="render_error", details=exc.to_dict()
        ) from exc
    largest: dict[str, Any] = {}
    for target, item, later in zip(targets, items, stages, strict=True):
        request_body = provider.build_request_body(shape.request(item.messages))
        tokens = estimate_prompt_tokens(request_body)
        if tokens >= prompt_tokens:
            prompt_tokens, largest = tokens, request_body
        rendered.append(
            {
                "index": target,
                "system": item.system,
                "user": item.user,
                "provider": getattr(provider, "name", None),
                "request_body": request_body,
                "sampled": item.draw.sampled,  # the item's sampled values and seed row (issue 18)
                "seed_row": item.draw.row_number,
                **({"stages": later} if later else {}),
            }
        )
    return {
        "items": rendered,
        "count": req.count,
        "model": req.model.model_dump(mode="json"),
        # the one preview estimate (llmts_providers.preview), as /templates/preview, plus each later stage's calls
        "estimate": estimate_with_stages(
            largest,
            stages,
            lambda request_body: preview_estimate(
                request_body,
                count=req.count,
                pricing=pricing_from(body.pricing),
                max_tokens=req.model.max_tokens,
                catalog_max_completion=body.max_completion_tokens,
                attempts=req.max_attempts_per_item,
                repair_prompt_tokens=REPAIR_PROMPT_TOKENS,
            ),
        ).to_dict(),
    }


def _internal_routes(router: APIRouter, access: Access) -> None:
    @router.get(
        "/internal/generate/{job_id}",
        tags=["internal"],
        summary="Job status for other services",
        response_model=JobPublic,
        response_model_exclude_unset=True,
    )
    async def internal_job(
        job_id: str,
        x_internal_token: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        doc = await access.internal_job(job_id, x_internal_token)
        view = access.view(doc, job_id)
        return {**view, "user_id": doc.get("user_id")}

    @router.get(
        "/internal/generate/{job_id}/items",
        tags=["internal"],
        summary="Accepted items in index order, keyset pages (after = last index seen, -1 to start)",
        response_model=ItemsPage,
        response_model_exclude_unset=True,
    )
    async def internal_items(
        job_id: str,
        after: Annotated[int, Query(ge=-1, le=MAX_ITEM_INDEX)] = -1,
        limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
        x_internal_token: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        doc = await access.internal_job(job_id, x_internal_token)
        items = await access.repo.items_page(job_id, after=after, limit=limit)
        views = [item_view(d) for d in items]
        last = views[-1]["index"] if views else None
        return {
            "job_id": job_id,
            "status": doc.get("status"),
            "terminal": state.is_terminal(str(doc.get("status"))),
            "succeeded": int((doc.get("counts") or {}).get("succeeded", 0)),
            "items": views,
            "next_after": last if len(views) == limit else None,
        }


def mount(app: FastAPI, router: APIRouter) -> None:
    app.include_router(router)
