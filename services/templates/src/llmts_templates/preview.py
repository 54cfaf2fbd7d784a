"""``POST /templates/preview``: render one item's prompts, the provider request body and the estimates.

The token and cost estimates are ``llmts_providers.estimate`` (the formula is in the providers library's README):
prompt tokens from the request body (messages and, for json output, the schema), a cost range per item from
no answer to a ``max_tokens`` answer, times ``count``. Prices are the catalog's (USD per 1M tokens); without the
catalog the estimate is null with a note.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from llmts_api.templates import PreviewRequest
from llmts_common.errors import Unprocessable
from llmts_providers.estimate import ASSUMED_MAX_TOKENS, METHOD, estimate_prompt_tokens
from llmts_providers.models import ModelPricing
from llmts_providers.preview import completion_guess, preview_estimate
from llmts_templates.adapters.provider_body import ProviderRequestBuilder, provider_for
from llmts_templates.domain.document import ModelSpec, TemplateDocument
from llmts_templates.domain.ports import ModelPrice, PriceLookup, PriceSource
from llmts_templating import RenderedPrompts, RenderError, build_context
from llmts_templating.pool import RenderPool

PREVIEW_JOB_ID = "preview"


def cost_range(
    price: ModelPrice,
    *,
    body: dict[str, Any],
    max_tokens: int | None,
    count: int,
    assumed_max_tokens: int = ASSUMED_MAX_TOKENS,
) -> dict[str, Any] | None:
    """The one preview estimate (``llmts_providers.preview``, as ``/generate/preview``) at the catalog's price;
    ``None`` when it has no prompt or completion price."""
    pricing = ModelPricing(
        prompt=price.prompt_per_million, completion=price.completion_per_million, request=price.request
    )
    estimate = preview_estimate(
        body,
        count=count,
        pricing=pricing,
        max_tokens=max_tokens,
        catalog_max_completion=price.max_completion_tokens,
        assumed_max_tokens=assumed_max_tokens,
    )
    return {**estimate.to_dict(), "model": price.model_id} if estimate.priced else None


def resolve_task(doc: TemplateDocument, req: PreviewRequest) -> tuple[dict[str, Any] | None, int]:
    """(task fields, task_index) for the previewed item."""
    if isinstance(req.task, dict):
        return req.task, req.index
    if isinstance(req.task, int):
        if not 0 <= req.task < len(doc.tasks):
            raise Unprocessable(
                f"task {req.task} does not exist (the template has {len(doc.tasks)})", code="invalid_task"
            )
        return doc.tasks[req.task], req.index
    if not doc.tasks:
        return None, req.index
    start = 0
    for task in doc.tasks:
        raw = task.get("count", 1)
        n = raw if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0 else 1
        if req.index < start + n:
            return task, req.index - start
        start += n
    raise Unprocessable(
        f"index {req.index} is beyond the template's tasks ({start} items)", code="invalid_index"
    )


async def _render(
    doc: TemplateDocument, req: PreviewRequest, renderer: RenderPool, now: datetime
) -> tuple[dict[str, Any] | None, int, RenderedPrompts]:
    """(task, task_index, rendered prompts) of the previewed item; a template that does not render is a 422."""
    task, task_index = resolve_task(doc, req)
    context = build_context(
        index=req.index,
        task_index=task_index,
        job_id=PREVIEW_JOB_ID,
        now=now,
        template_variables=doc.variables,
        task=task,
        request_variables=req.variables,
    )
    try:
        rendered = await renderer.render_prompts(doc.prompts.system, doc.prompts.user, context)
    except RenderError as err:
        raise Unprocessable(
            f"the template does not render: {err.message}", code="render_error", details=err.to_dict()
        ) from None
    return task, task_index, rendered


def _model_for(doc: TemplateDocument, req: PreviewRequest, default_model: str, notes: list[str]) -> ModelSpec:
    """The request's model (an id keeps the template's temperature and max_tokens), the template's, or the default."""
    if isinstance(req.model, ModelSpec):
        return req.model
    if isinstance(req.model, str):
        base = doc.model
        return ModelSpec(
            id=req.model,
            provider=None,
            temperature=base.temperature if base else None,
            max_tokens=base.max_tokens if base else None,
        )
    if doc.model is not None:
        return doc.model
    notes.append(f"the template names no model; previewed with the default {default_model!r}")
    return ModelSpec(id=default_model)


def _cost(
    req: PreviewRequest,
    lookup: PriceLookup | None,
    model_id: str,
    body: dict[str, Any],
    model: ModelSpec,
    assumed_max_tokens: int,
    notes: list[str],
) -> dict[str, Any] | None:
    if req.count is None:
        notes.append("give count (and a model) for a cost estimate")
        return None
    if lookup is None or lookup.price is None:
        return None
    cost = cost_range(
        lookup.price,
        body=body,
        max_tokens=model.max_tokens,
        count=req.count,
        assumed_max_tokens=assumed_max_tokens,
    )
    if cost is None:
        notes.append(f"the catalog has no token price for {model_id!r}; no cost estimate")
    else:
        notes.append(
            "the estimate scales this item's prompt to every item; prompts of other items may differ"
        )
    return cost


async def preview(
    doc: TemplateDocument,
    req: PreviewRequest,
    *,
    renderer: RenderPool,
    bodies: ProviderRequestBuilder,
    prices: PriceSource,
    now: datetime,
    default_model: str,
    default_max_tokens: int,
    authorization: str | None,
) -> dict[str, Any]:
    notes: list[str] = []
    task, task_index, rendered = await _render(doc, req, renderer, now)
    model = _model_for(doc, req, default_model, notes)
    provider = provider_for(model.id, model.provider)
    price_lookup = None
    if req.count is not None:
        price_lookup = await prices.price(model.id, authorization=authorization)
        notes.extend(price_lookup.notes)
    body = bodies.body(
        provider=provider,
        model_id=model.id,
        system=rendered.system,
        user=rendered.user,
        temperature=model.temperature,
        max_tokens=model.max_tokens,
        json_schema=doc.json_schema if doc.output.format == "json" else None,
        structured_output=True,
    )
    prompt_tokens = estimate_prompt_tokens(body)
    catalog_max = price_lookup.price.max_completion_tokens if price_lookup and price_lookup.price else None
    completion, assumed = completion_guess(model.max_tokens, catalog_max, default_max_tokens)
    if assumed:
        notes.append(f"no max_tokens: the high estimate assumes {completion} completion tokens")
    cost = _cost(req, price_lookup, model.id, body, model, default_max_tokens, notes)
    return {
        "index": req.index,
        "task_index": task_index,
        "task": task,
        "rendered": {"system": rendered.system, "user": rendered.user},
        "provider": provider,
        "model": model.model_dump(mode="json"),
        "request_body": body,
        "token_estimate": {
            "prompt_tokens": prompt_tokens,
            "max_completion_tokens": completion,
            "method": METHOD,
        },
        "cost_estimate": cost,
        "notes": notes,
    }
