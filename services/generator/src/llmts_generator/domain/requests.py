"""From a job request to the provider request of one item: the render → provider-request path shared by the
runner (every call of a job) and the preview route (the first items of a would-be job)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from llmts_common.contracts import GenerationRequested
from llmts_generator.domain.itemvars import NO_DRAW, ItemDraw, plain_variables
from llmts_generator.domain.repair import Message, first_messages
from llmts_generator.domain.tasks import TaskRef, task_for_target
from llmts_providers.models import ChatMessage, ChatRequest
from llmts_providers.preview import structured_output
from llmts_templating import RenderedPrompts, build_context


class Renderer(Protocol):
    """Renders prompt pairs off the event loop with a hard deadline (``llmts_templating.pool.RenderPool``)."""

    async def render_prompts(self, system: str, user: str, context: Mapping[str, Any]) -> RenderedPrompts: ...

    async def render_prompts_many(
        self, system: str, user: str, contexts: Sequence[Mapping[str, Any]]
    ) -> list[RenderedPrompts]: ...


@dataclass(frozen=True)
class RenderedItem:
    """The prompts of one target and the messages of its first attempt."""

    target: int
    task_index: int
    system: str
    user: str
    messages: list[Message]
    # what the prompts saw: later stages of a multi-stage template render with it and the outputs before them
    context: Mapping[str, Any] = field(default_factory=dict)
    draw: ItemDraw = NO_DRAW  # the target's seed row and sampled values (domain/itemvars)


def item_context(
    req: GenerationRequested,
    plan: Sequence[TaskRef],
    target: int,
    *,
    job_id: str,
    now: datetime,
    draw: ItemDraw = NO_DRAW,
) -> tuple[int, dict[str, Any]]:
    """(task index, render context) of ``target``: built-ins, then the template's plain variables (sampler specs
    left out), the seed row and the sampled values (``draw``), the task's fields, the request's variables."""
    task_vars, _task_no, task_index = task_for_target(plan, target)
    context = build_context(
        index=target,
        task_index=task_index,
        job_id=job_id,
        now=now,
        template_variables={**plain_variables(req.template.variables), **draw.layer()},
        task=task_vars,
        request_variables=req.variables,
    )
    return task_index, context


def _item(
    target: int, task_index: int, prompts: RenderedPrompts, context: Mapping[str, Any], draw: ItemDraw
) -> RenderedItem:
    messages = first_messages(prompts.system, prompts.user)
    return RenderedItem(target, task_index, prompts.system, prompts.user, messages, context, draw)


async def render_item(
    renderer: Renderer,
    req: GenerationRequested,
    plan: Sequence[TaskRef],
    target: int,
    *,
    job_id: str,
    now: datetime,
    draw: ItemDraw = NO_DRAW,
) -> RenderedItem:
    """Render the template's prompts for ``target`` (raises ``llmts_templating.RenderError``)."""
    task_index, context = item_context(req, plan, target, job_id=job_id, now=now, draw=draw)
    prompts = await renderer.render_prompts(req.template.prompts.system, req.template.prompts.user, context)
    return _item(target, task_index, prompts, context, draw)


async def render_items(
    renderer: Renderer,
    req: GenerationRequested,
    plan: Sequence[TaskRef],
    targets: Sequence[int],
    *,
    job_id: str,
    now: datetime,
    draws: Sequence[ItemDraw] | None = None,
) -> list[RenderedItem]:
    """The prompts of several targets in one render call, under one deadline (the preview's first items);
    ``draws``: each target's seed row and sampled values, in the order of ``targets``."""
    drawn = list(draws) if draws is not None else [NO_DRAW] * len(targets)
    made = [
        item_context(req, plan, t, job_id=job_id, now=now, draw=d)
        for t, d in zip(targets, drawn, strict=True)
    ]
    prompts = await renderer.render_prompts_many(
        req.template.prompts.system, req.template.prompts.user, [context for _, context in made]
    )
    return [_item(t, ti, p, c, d) for t, (ti, c), p, d in zip(targets, made, prompts, drawn, strict=True)]


@dataclass(frozen=True)
class RequestShape:
    """What every provider request of a job shares: model, sampling, and structured output (the template's schema,
    ``strict`` only when the schema allows it). Computed once per job."""

    model_id: str
    temperature: float | None
    max_tokens: int | None
    json_schema: dict[str, Any] | None
    strict: bool
    stream: bool = (
        False  # streamed calls: first-token and idle deadlines, time to first token for the limiter
    )

    @classmethod
    def of(cls, req: GenerationRequested, model_id: str) -> RequestShape:
        schema, strict = structured_output(req.template.output_format, req.template.json_schema)
        return cls(
            model_id=model_id,
            temperature=req.model.temperature,
            max_tokens=req.model.max_tokens,
            json_schema=schema,
            strict=strict,
        )

    def request(self, messages: Sequence[Message], seed: int | None = None) -> ChatRequest:
        return ChatRequest(
            model=self.model_id,
            messages=[ChatMessage(role=r, content=c) for r, c in messages],
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            seed=seed,
            json_schema=self.json_schema,
            strict=self.strict,
            stream=self.stream,
            # the system message (instructions, schema, examples) is the head every call of the job shares and
            # comes first (domain/repair): a cache breakpoint there where the provider needs one
            cache_prompt=True,
        )
