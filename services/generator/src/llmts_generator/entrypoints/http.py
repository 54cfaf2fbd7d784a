"""HTTP API of the generator (behind the gateway). Owner only: the forwarded bearer token is verified here and
another user's job answers 404, exactly like a job that does not exist.

- ``GET /generate/{job_id}``: status, counts, usage, model, template, timings, stop reason.
- ``GET /generate/{job_id}/result?limit&offset&include=rejected``: ``{items, total}``.
- ``GET /history`` and ``GET /history/{job_id}`` (the latter with a per-attempt summary).
- ``POST /preview``: rendered prompts + exact provider request body + cost estimate (no job).
- ``GET /internal/generate/{job_id}`` and ``GET /internal/generate/{job_id}/items?after=&limit=``: for services
  (the exporter) that read a job without a user token: header ``X-Internal-Token`` (when configured), keyset
  pages in index order.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Query

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
from llmts_common.auth import JwksVerifier, bearer_token
from llmts_common.contracts import GenerationRequested
from llmts_common.errors import NotFound, Unauthorized, Unprocessable
from llmts_generator.domain import state
from llmts_generator.domain.ports import GenerationRepository
from llmts_generator.domain.repair import MAX_ERROR_CHARS, MAX_ERRORS, repair_instruction
from llmts_generator.domain.requests import RequestShape, render_item
from llmts_generator.domain.tasks import expand_tasks
from llmts_generator.manager import JobManager
from llmts_providers import Provider
from llmts_providers.estimate import estimate_cost, estimate_prompt_tokens, estimate_text_tokens, pricing_from
from llmts_templating import PromptRenderer, RenderError

ProviderResolver = Callable[[str, str | None], Awaitable[tuple[Provider, str]]]


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return str(value.isoformat())
    return None


def _duration(doc: Mapping[str, Any]) -> float | None:
    started, finished = doc.get("started_at"), doc.get("finished_at")
    if isinstance(started, datetime):
        end = finished if isinstance(finished, datetime) else datetime.now(UTC)
        if started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        if end.tzinfo is None:
            end = end.replace(tzinfo=UTC)
        return round(max(0.0, (end - started).total_seconds()), 3)
    return None


def job_view(doc: Mapping[str, Any], in_flight: int | None = None) -> dict[str, Any]:
    counts = doc.get("counts") or {}
    usage = doc.get("usage") or {}
    error = doc.get("error") or None
    return {
        "job_id": doc["_id"],
        "status": doc.get("status"),
        "template": doc.get("template"),
        "model": doc.get("model"),
        "requested": doc.get("requested"),
        "counts": {
            "requested": doc.get("requested"),
            "succeeded": int(counts.get("succeeded", 0)),
            "rejected": int(counts.get("rejected", 0)),
            "attempts": int(counts.get("attempts", 0)),
            "item_attempts": int(counts.get("item_attempts", 0)),
            "in_flight": in_flight,
        },
        "usage": {
            "prompt_tokens": int(usage.get("prompt_tokens", 0)),
            "completion_tokens": int(usage.get("completion_tokens", 0)),
            "cost_usd": round(float(usage.get("cost_usd", 0.0)), 10),
        },
        "options": {
            "validation_mode": doc.get("validation_mode"),
            "concurrency": doc.get("concurrency"),
            "max_attempts_per_item": doc.get("max_attempts_per_item"),
            "max_cost_usd": doc.get("max_cost_usd"),
            "dedup": doc.get("dedup"),
        },
        "stop_reason": doc.get("stop_reason"),
        "error": error,
        "cancel_requested": bool(doc.get("cancel_requested")),
        "timings": {
            "created_at": _iso(doc.get("created_at")),
            "queued_at": _iso(doc.get("queued_at")),
            "started_at": _iso(doc.get("started_at")),
            "finished_at": _iso(doc.get("finished_at")),
            "duration_seconds": _duration(doc),
        },
    }


def item_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    usage = doc.get("usage") or {}
    base = {
        "attempts": int(doc.get("attempts", 0)),
        "usage": {
            "prompt_tokens": int(usage.get("prompt_tokens", 0)),
            "completion_tokens": int(usage.get("completion_tokens", 0)),
            "cost_usd": float(usage.get("cost_usd", 0.0)),
        },
    }
    if doc.get("status") == "rejected":
        return {
            "index": None,
            "status": "rejected",
            "slot": doc.get("slot"),
            "reason": doc.get("reason"),
            "errors": doc.get("errors") or [],
            "last_output": doc.get("last_output"),
            **base,
        }
    data_json = doc.get("data_json")
    return {
        "index": int(doc["index"]),
        "status": "accepted",
        "data": json.loads(data_json) if isinstance(data_json, str) else None,
        **base,
    }


def attempt_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    error = doc.get("error") or None
    return {
        "slot": doc.get("slot"),
        "call": doc.get("call"),
        "item_attempt": doc.get("item_attempt"),
        "kind": doc.get("kind"),
        "outcome": doc.get("outcome"),
        "prompt_tokens": doc.get("prompt_tokens", 0),
        "completion_tokens": doc.get("completion_tokens", 0),
        "cost_usd": doc.get("cost_usd", 0.0),
        "latency_ms": doc.get("latency_ms"),
        "finish_reason": doc.get("finish_reason"),
        "error": {"code": error.get("code"), "message": error.get("message")} if error else None,
        "errors": doc.get("errors") or [],
        "started_at": _iso(doc.get("started_at")),
    }


# the longest repair instruction a repair call adds (every shown error at its clipped length), for the estimate
REPAIR_PROMPT_TOKENS = estimate_text_tokens(
    repair_instruction([{"path": "", "message": "x" * MAX_ERROR_CHARS}] * MAX_ERRORS)
)


def build_router(
    *,
    repo: GenerationRepository,
    manager: JobManager,
    verifier: JwksVerifier,
    resolve_provider: ProviderResolver,
    renderer: PromptRenderer,
    internal_token: str | None,
) -> APIRouter:
    router = APIRouter()

    async def user_id_of(authorization: str | None) -> str:
        principal = await verifier.verify(bearer_token(authorization))
        return principal.user_id

    async def owned_job(job_id: str, authorization: str | None) -> dict[str, Any]:
        user_id = await user_id_of(authorization)
        doc = await repo.get_job(job_id, {"request": 0, "_items": 0, "_attempts": 0, "_outbox": 0})
        if doc is None or doc.get("user_id") != user_id:
            raise NotFound("generation job not found", details={"job_id": job_id})
        return doc

    def in_flight(job_id: str) -> int | None:
        runner = manager.runner(job_id)
        if runner is None or runner.scheduler is None:
            return None
        return len(runner.scheduler.in_flight)

    @router.get(
        "/generate/{job_id}",
        tags=["generation"],
        summary="Status of a job",
        response_model=JobPublic,
        response_model_exclude_unset=True,
    )
    async def get_job(job_id: str, authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        doc = await owned_job(job_id, authorization)
        return job_view(doc, in_flight(job_id))

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
        doc = await owned_job(job_id, authorization)
        limit, offset = query.limit, query.offset
        include_rejected = query.include == "rejected"
        items, total = await repo.list_items(
            job_id, include_rejected=include_rejected, limit=limit, offset=offset
        )
        return {
            "job_id": job_id,
            "status": doc.get("status"),
            "items": [item_view(d) for d in items],
            "total": total,
            "limit": limit,
            "offset": offset,
        }

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
        user_id = await user_id_of(authorization)
        limit, offset = query.limit, query.offset
        filters = {
            "status": query.status,
            "template_id": query.template_id,
            "model": query.model,
            "from": query.from_,
            "to": query.to,
            "q": query.q,
        }
        docs, total, totals = await repo.history(user_id, filters, limit=limit, offset=offset)
        return {
            "items": [job_view(d, in_flight(str(d["_id"]))) for d in docs],
            "total": total,
            "limit": limit,
            "offset": offset,
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
        doc = await owned_job(job_id, authorization)
        attempts = await repo.attempts_of(job_id, limit=100_000)
        by_outcome: dict[str, dict[str, Any]] = {}
        for a in attempts:
            key = str(a.get("outcome") or "unknown")
            row = by_outcome.setdefault(
                key, {"count": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
            )
            row["count"] += 1
            row["prompt_tokens"] += int(a.get("prompt_tokens", 0))
            row["completion_tokens"] += int(a.get("completion_tokens", 0))
            row["cost_usd"] = round(row["cost_usd"] + float(a.get("cost_usd", 0.0)), 10)
        return {
            **job_view(doc, in_flight(job_id)),
            "attempts": {
                "total": len(attempts),
                "by_outcome": by_outcome,
                "items": [attempt_view(a) for a in attempts[:attempts_limit]],
            },
        }

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
        await user_id_of(authorization)
        raw = dict(body.request)
        raw.setdefault("job_id", "preview")
        raw.setdefault("requested_at", datetime.now(UTC).isoformat())
        try:
            req = GenerationRequested.model_validate(raw)
        except Exception as exc:
            raise Unprocessable(f"invalid preview request: {exc}"[:500]) from exc
        tpl = req.template
        try:
            provider, model_id = await resolve_provider(req.model.id, req.model.provider)
        except Exception as exc:
            raise Unprocessable(f"unknown model {req.model.id!r}: {exc}"[:500], code="unknown_model") from exc
        plan = expand_tasks(req.tasks or tpl.tasks)
        shape = RequestShape.of(req, model_id)
        rendered = []
        now = datetime.now(UTC)
        prompt_tokens = 0
        for target in range(min(body.items, req.count)):
            try:
                item = render_item(renderer, req, plan, target, job_id=req.job_id, now=now)
            except RenderError as exc:
                raise Unprocessable(
                    f"the template could not be rendered: {exc}", code="render_error", details=exc.to_dict()
                ) from exc
            messages = item.messages
            chat = shape.request(messages)
            request_body = provider.build_request_body(chat)
            prompt_tokens = max(prompt_tokens, estimate_prompt_tokens(request_body))
            rendered.append(
                {
                    "index": target,
                    "system": item.system,
                    "user": item.user,
                    "provider": getattr(provider, "name", None),
                    "request_body": request_body,
                }
            )
        return {
            "items": rendered,
            "count": req.count,
            "model": req.model.model_dump(mode="json"),
            "estimate": estimate_cost(
                prompt_tokens=prompt_tokens,
                count=req.count,
                pricing=pricing_from(body.pricing),
                max_tokens=req.model.max_tokens,
                attempts=req.max_attempts_per_item,
                repair_prompt_tokens=REPAIR_PROMPT_TOKENS,
            ).to_dict(),
        }

    # --- internal (service to service) ---------------------------------------------------------------
    async def internal_auth(job_id: str, token: str | None, authorization: str | None) -> dict[str, Any]:
        if token is not None and internal_token is not None:
            if not hmac.compare_digest(token, internal_token):
                raise Unauthorized("invalid internal token", code="invalid_token")
            doc = await repo.get_job(job_id, {"request": 0, "_items": 0, "_attempts": 0, "_outbox": 0})
            if doc is None:
                raise NotFound("generation job not found", details={"job_id": job_id})
            return doc
        if internal_token is None and authorization is None:
            doc = await repo.get_job(job_id, {"request": 0, "_items": 0, "_attempts": 0, "_outbox": 0})
            if doc is None:
                raise NotFound("generation job not found", details={"job_id": job_id})
            return doc
        return await owned_job(job_id, authorization)

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
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        doc = await internal_auth(job_id, x_internal_token, authorization)
        return {**job_view(doc, in_flight(job_id)), "user_id": doc.get("user_id")}

    @router.get(
        "/internal/generate/{job_id}/items",
        tags=["internal"],
        summary="Accepted items in index order, keyset pages (after = last index seen, -1 to start)",
        response_model=ItemsPage,
        response_model_exclude_unset=True,
    )
    async def internal_items(
        job_id: str,
        after: Annotated[int, Query(ge=-1)] = -1,
        limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
        x_internal_token: Annotated[str | None, Header()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        doc = await internal_auth(job_id, x_internal_token, authorization)
        items = await repo.items_page(job_id, after=after, limit=limit)
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

    return router


def mount(app: FastAPI, router: APIRouter) -> None:
    app.include_router(router)
