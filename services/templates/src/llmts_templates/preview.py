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
from llmts_providers.estimate import ASSUMED_MAX_TOKENS, METHOD, estimate_prompt_tokens
from llmts_providers.models import ModelPricing
from llmts_providers.preview import completion_guess, preview_estimate
from llmts_templates.adapters.provider_body import ProviderRequestBuilder, provider_for
from llmts_templates.domain.document import ModelSpec, TemplateDocument
from llmts_templates.domain.ports import ModelPrice, PriceLookup, PriceSource
from llmts_templates.preview_items import SeedRow, judge_preview, preview_items, task_at
from llmts_templating import RenderedPrompts
from llmts_templating.pool import RenderPool
from llmts_templating.samplers import is_sampler_spec


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
    """(task fields, task_index) for the previewed item (``req.index``)."""
    return task_at(doc, req, req.index)


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
    rows: list[SeedRow | None] | None = None,
) -> dict[str, Any]:
    """One item's request body and estimates (``req.index``), and ``req.items`` items with their sampled values,
    seed rows and every stage's prompts (``preview_items``); ``rows``: the seed row of each of those items."""
    notes: list[str] = []
    items = await preview_items(doc, req, renderer=renderer, now=now, rows=rows)
    first = items[0]
    task, task_index = first["task"], first["task_index"]
    rendered = RenderedPrompts(**first["rendered"])
    _pipeline_notes(doc, req, notes)
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
        "sample_seed": req.sample_seed,
        "items": [{k: v for k, v in item.items() if k not in ("task", "inputs")} for item in items],
        "judge": await judge_preview(doc, first),
    }


def _pipeline_notes(doc: TemplateDocument, req: PreviewRequest, notes: list[str]) -> None:
    if any(is_sampler_spec(v) for v in doc.variables.values()):
        notes.append(
            f"sampled values are drawn with sample_seed={req.sample_seed}: what a job with seed "
            f"{req.sample_seed} draws"
        )
    if doc.seed is not None and doc.seed.sampling != "ordered":
        notes.append(
            f"seed rows picked with {doc.seed.sampling!r} sampling and sample_seed={req.sample_seed}: the rows a "
            f"job with seed {req.sample_seed} gives these items"
        )
    if doc.stages:
        notes.append(
            "stages are rendered with placeholder outputs of the earlier stages (example values from their "
            "schemas); request_body and the estimates are the top-level stage's"
        )
