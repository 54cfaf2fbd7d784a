"""From a job request to the provider request of one item: the render → provider-request path shared by the
runner (every call of a job) and the preview route (the first items of a would-be job)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from llmts_common.contracts import GenerationRequested
from llmts_generator.domain.repair import Message, first_messages
from llmts_generator.domain.schema import is_strict_compatible
from llmts_generator.domain.tasks import TaskRef, task_for_target
from llmts_providers.models import ChatMessage, ChatRequest
from llmts_templating import PromptRenderer, build_context


@dataclass(frozen=True)
class RenderedItem:
    """The prompts of one target and the messages of its first attempt."""

    target: int
    task_index: int
    system: str
    user: str
    messages: list[Message]


def render_item(
    renderer: PromptRenderer,
    req: GenerationRequested,
    plan: Sequence[TaskRef],
    target: int,
    *,
    job_id: str,
    now: datetime,
) -> RenderedItem:
    """Render the template's prompts for ``target`` (raises ``llmts_templating.RenderError``)."""
    tpl = req.template
    task_vars, _task_no, task_index = task_for_target(plan, target)
    prompts = renderer.render_prompts(
        tpl.prompts.system,
        tpl.prompts.user,
        build_context(
            index=target,
            task_index=task_index,
            job_id=job_id,
            now=now,
            template_variables=tpl.variables,
            task=task_vars,
            request_variables=req.variables,
        ),
    )
    return RenderedItem(
        target, task_index, prompts.system, prompts.user, first_messages(prompts.system, prompts.user)
    )


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
        tpl = req.template
        structured = tpl.output_format == "json" and tpl.json_schema is not None
        return cls(
            model_id=model_id,
            temperature=req.model.temperature,
            max_tokens=req.model.max_tokens,
            json_schema=tpl.json_schema if structured else None,
            strict=structured and is_strict_compatible(tpl.json_schema),
        )

    def request(self, messages: Sequence[Message]) -> ChatRequest:
        return ChatRequest(
            model=self.model_id,
            messages=[ChatMessage(role=r, content=c) for r, c in messages],
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            json_schema=self.json_schema,
            strict=self.strict,
            stream=self.stream,
        )
