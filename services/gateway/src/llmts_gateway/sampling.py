"""``estimate: "sample"`` of ``POST /generate/preview``: the cost of a job measured on a small real sample of it.

The sample is the job itself cut to its first ``k`` items (k = ``estimate_sample_size``, default min(5, count)),
run as an ordinary job of the caller: admitted against the caller's quota, charged and counted in their usage like
any job, listed in their history (its id is in the answer). Its response cache mode is ``refresh`` (a sample
answered from the cache would measure nothing) and it always runs sync. When it ends, its spend is extrapolated:

    per valid item = sample cost / valid items of the sample (the calls of repairs, retries and rejected items
    included) → expected = per valid item × count

and a range from the spread of the sample's item costs: expected ± 1.96 × sd(item cost) / √valid × count (low ≥ 0).
A sample without a valid item gives no figure (``per_item`` and ``total`` null). A sample still running after
``timeout_s`` answers 504 ``sample_timeout`` with its job id (it goes on; its cost counts).
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

from llmts_api.estimates import DEFAULT_SAMPLE_SIZE, GenerationPreviewCreate
from llmts_common.contracts import GenerationRequested
from llmts_common.errors import AppError
from llmts_gateway import handlers
from llmts_gateway.domain import jobs
from llmts_gateway.domain.ports import Answer

Z_95 = 1.96
POLL_S = 0.2


def sample_command(command: GenerationRequested, size: int | None, job_id: str) -> GenerationRequested:
    """The job cut to its first items, as a job of its own."""
    count = min(size or DEFAULT_SAMPLE_SIZE, command.count)
    update: dict[str, Any] = {"job_id": job_id, "count": count, "cache": "refresh"}
    if "mode" in type(command).model_fields:
        update["mode"] = "sync"
    return command.model_copy(update=update)


def extrapolate(job: Mapping[str, Any], item_costs: Sequence[float], count: int) -> dict[str, Any]:
    """The estimate of ``count`` items from the sample job's view and its accepted items' costs."""
    counts = job.get("counts") or {}
    usage = job.get("usage") or {}
    valid = int(counts.get("succeeded", 0))
    cost = float(usage.get("cost_usd", 0.0))
    calls = int(counts.get("attempts", 0))
    sample = {
        "job_id": job.get("job_id"),
        "size": job.get("requested"),
        "status": job.get("status"),
        "valid": valid,
        "rejected": int(counts.get("rejected", 0)),
        "calls": calls,
        "prompt_tokens": int(usage.get("prompt_tokens", 0)),
        "completion_tokens": int(usage.get("completion_tokens", 0)),
        "cost_usd": round(cost, 10),
    }
    out: dict[str, Any] = {
        "method": "sample",
        "currency": "USD",
        "count": count,
        "sample": sample,
        "per_item": None,
        "total": None,
        "calls_per_item": None,
    }
    if valid == 0:
        return out
    per_item = cost / valid
    spread = statistics.stdev(item_costs) if len(item_costs) > 1 else 0.0
    margin = Z_95 * spread / math.sqrt(valid)
    low, high = max(0.0, per_item - margin), per_item + margin
    out["per_item"] = {"low": _usd(low), "expected": _usd(per_item), "high": _usd(high)}
    out["total"] = {"low": _usd(low * count), "expected": _usd(per_item * count), "high": _usd(high * count)}
    out["calls_per_item"] = round(calls / valid, 4)
    return out


def _usd(value: float) -> float:
    return round(value, 10)


async def wait_terminal(
    job_id: str, *, user_id: str, token: str, deps: handlers.Deps, timeout_s: float
) -> dict[str, Any]:
    """The job's view once it ended (504 ``sample_timeout`` after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = await handlers.job_status(job_id, user_id=user_id, token=token, deps=deps)
        view = answer.body if answer.ok and isinstance(answer.body, dict) else None
        if view is not None and jobs.is_terminal(view):
            return view
        if time.monotonic() >= deadline:
            raise AppError(
                f"the estimate's sample job did not end within {timeout_s:g} s; it goes on (its cost counts)",
                code="sample_timeout",
                status_code=504,
                details={"job_id": job_id},
            )
        await asyncio.sleep(POLL_S)


async def accepted_costs(job_id: str, *, token: str, deps: handlers.Deps, limit: int) -> list[float]:
    """What each accepted item of the sample cost (its repairs included)."""
    answer = await deps.generator.get_result(job_id, params={"limit": limit, "offset": 0}, token=token)
    if not answer.ok or not isinstance(answer.body, dict):
        return []
    items = answer.body.get("items") or []
    return [float((i.get("usage") or {}).get("cost_usd", 0.0)) for i in items if isinstance(i, dict)]


async def preview_with_sample(
    body: GenerationPreviewCreate, *, user_id: str, token: str, deps: handlers.Deps, timeout_s: float
) -> Answer:
    """The job's preview whose estimate is measured on a real sample (the token guess kept as ``tokens_estimate``)."""
    command, pricing = await handlers.build_command(body, user_id=user_id, token=token, deps=deps)
    preview = await handlers.preview(command, pricing, token=token, deps=deps)
    if not preview.ok or not isinstance(preview.body, dict):
        return preview
    sample = sample_command(command, body.estimate_sample_size, deps.new_id())
    admitted = await handlers.admit([(sample, pricing)], user_id=user_id, deps=deps)
    await handlers.submit_admitted(admitted, user_id=user_id, deps=deps)
    view = await wait_terminal(sample.job_id, user_id=user_id, token=token, deps=deps, timeout_s=timeout_s)
    costs = await accepted_costs(sample.job_id, token=token, deps=deps, limit=sample.count)
    estimate = extrapolate(view, costs, command.count)
    estimate["tokens_estimate"] = preview.body.get("estimate")
    return Answer(200, {**preview.body, "estimate": estimate})
