"""Rules of generation jobs at the gateway: what a request becomes (count, model, validation mode, template
snapshot), what an upstream answer means, what a job accepted but not yet seen by the generator looks like.

Everything that can be known when the request arrives is checked here, so a job never fails later for a reason
known now.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmts_api.generation import TERMINAL_STATUSES, GenerationCreate, JobLinks
from llmts_common.contracts import (
    FallbackModel,
    GenerationRequested,
    ModelRef,
    Prompts,
    TemplateSnapshot,
    ValidationSpec,
)
from llmts_common.contracts.common_models import JudgeSpec, ProviderName, SeedRef, StageSpec
from llmts_common.errors import (
    AppError,
    Conflict,
    InvalidField,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unprocessable,
)
from llmts_gateway.domain.ports import Answer

TERMINAL_EVENT_TYPES = frozenset(
    {"llmts.generation.completed", "llmts.generation.failed", "llmts.generation.cancelled"}
)
PREVIEW_ITEMS = 3
BATCH_PROVIDER = "openai-compatible"  # the provider whose adapter speaks a Batch API (files + batches)
# what the Kafka envelope adds around a command's data (id, type, source, time, subject, schema, trace ids, key)
ENVELOPE_OVERHEAD_BYTES = 1024

_M = TypeVar("_M", bound=FallbackModel)


def links(job_id: str) -> JobLinks:
    return JobLinks(
        self=f"/generate/{job_id}",
        events=f"/generate/{job_id}/events",
        websocket=f"/ws/generate/{job_id}",
        result=f"/generate/{job_id}/result",
    )


# ------------------------------------------------------------------------------------------------ template
class _Output(BaseModel):
    model_config = ConfigDict(extra="ignore")
    format: Literal["json", "text"] = "json"


class TemplateAnswer(BaseModel):
    """What the gateway reads of the templates service's ``GET /templates/{id}`` answer (a stored template:
    identity + document). Identity and prompts are required; the rest has the template document's defaults."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(min_length=1)
    version: int = Field(ge=1)
    name: str
    owner_id: str = Field(min_length=1)
    output: _Output = Field(default_factory=_Output)
    prompts: Prompts
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    variables: dict[str, Any] = Field(default_factory=dict)
    tasks: list[dict[str, Any]] = Field(default_factory=list)
    model: ModelRef | None = None
    seed: SeedRef | None = None
    judge: JudgeSpec | None = None
    stages: list[StageSpec] = Field(default_factory=list)

    def snapshot(self) -> TemplateSnapshot:
        return TemplateSnapshot(
            id=self.id,
            version=self.version,
            name=self.name,
            owner_id=self.owner_id,
            output_format=self.output.format,
            prompts=self.prompts,
            schema=self.json_schema,
            validation=self.validation,
            variables=self.variables,
            tasks=self.tasks,
            model=self.model,
            seed=self.seed,
            judge=self.judge,
            stages=self.stages,
        )


def template_from_answer(template_id: str, answer: Answer) -> TemplateSnapshot:
    """The snapshot a job runs with, from the templates service's answer to the caller's read."""
    if answer.status in (403, 404):  # another user's private template reads as absent
        raise NotFound(
            f"template {template_id!r} not found",
            code="template_not_found",
            details={"template_id": template_id},
        )
    if answer.status == 401:
        raise AppError("the templates service refused the token", code="unauthorized", status_code=401)
    if answer.status >= 500:
        raise ServiceUnavailable("the templates service is unavailable", details={"service": "templates"})
    if answer.status != 200:
        raise InvalidField(
            f"template {template_id!r} could not be read ({answer.status})", loc=("body", "template_id")
        )
    try:
        return TemplateAnswer.model_validate(answer.body).snapshot()
    except ValidationError as exc:
        raise InvalidField(
            f"template {template_id!r} cannot be used for generation: {exc}"[:500],
            loc=("body", "template_id"),
        ) from exc


# ------------------------------------------------------------------------------------------------ command
def count_from_tasks(tasks: list[dict[str, Any]]) -> int:
    """Items asked for by a task list: a task with ``count: k`` (k ≥ 0) asks for k, any other task for 1."""
    total = 0
    for task in tasks:
        raw = task.get("count", 1)
        total += raw if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0 else 1
    return total


def plan_items(
    body: GenerationCreate, template: TemplateSnapshot, *, max_count: int
) -> tuple[list[dict[str, Any]], int]:
    """The tasks (request's, else template's) and the number of items: ``count``, else what the tasks ask."""
    tasks = body.tasks if body.tasks is not None else list(template.tasks)
    count = body.count
    if count is None:
        count = count_from_tasks(tasks)
        if count == 0:
            raise InvalidField(
                "count is required: the template defines no tasks", loc=("body", "count"), type="missing"
            )
    if count > max_count:
        raise InvalidField(
            f"count {count} exceeds the maximum of {max_count} items per job",
            loc=("body", "count"),
            type="less_than_equal",
        )
    return tasks, count


def choose_model(body: GenerationCreate, template: TemplateSnapshot) -> ModelRef:
    """The request's model (temperature and max_tokens it leaves out are the template's), else the template's."""
    if body.model is not None:
        chosen = ModelRef.model_validate(body.model.model_dump())
        base = template.model
        if base is None:
            return chosen
        kept = {
            key: getattr(base, key)
            for key in ("temperature", "max_tokens")
            if key not in body.model.model_fields_set and getattr(base, key) is not None
        }
        return chosen.model_copy(update=kept) if kept else chosen
    if template.model is not None:
        return template.model
    raise InvalidField(
        "no model: the request and the template name none", loc=("body", "model"), type="missing"
    )


def model_from_catalog(model: ModelRef, answer: Answer) -> tuple[ModelRef, dict[str, Any] | None]:
    """A model unknown to the catalog is refused; a known one gets its provider filled in and its pricing.
    Any other answer (catalog degraded) does not block generation."""
    model = _known_model(model, answer, f"unknown model {model.id!r}", {})
    body = answer.body if answer.status == 200 and isinstance(answer.body, Mapping) else {}
    pricing = body.get("pricing")
    if not isinstance(pricing, Mapping):
        return model, None
    most = body.get("max_completion_tokens")  # the previews' completion guess (llmts_providers.preview)
    extra = {"max_completion_tokens": most} if isinstance(most, int) and most > 0 else {}
    return model, {**pricing, **extra}


def fallback_from_catalog(model: FallbackModel, answer: Answer, position: int) -> FallbackModel:
    """A fallback model must be known to the catalog too (refused up front, not when the job needs it)."""
    field = {"field": f"model.fallback[{position}]"}
    return _known_model(model, answer, f"unknown fallback model {model.id!r}", field)


def _known_model(model: _M, answer: Answer, message: str, details: dict[str, Any]) -> _M:
    """404 → ``unknown_model``; a 200 fills in the provider the request left out; anything else passes."""
    if answer.status == 404:
        raise Unprocessable(
            message, code="unknown_model", details={**details, "model": model.id, "provider": model.provider}
        )
    if answer.status != 200 or not isinstance(answer.body, Mapping):
        return model
    provider = _known_provider(model.provider, answer.body)
    return model if provider == model.provider else model.model_copy(update={"provider": provider})


def _known_provider(asked: str | None, record: Mapping[str, Any]) -> Any:
    """The provider the request named, else the catalog record's (when it is one of ours)."""
    found = record.get("provider")
    if asked is None and found in get_args(ProviderName):
        return found
    return asked


def validation_mode(
    body: GenerationCreate, template: TemplateSnapshot
) -> Literal["strict", "custom", "none"]:
    """The request's mode, else the template's; strict validation of json output needs a schema."""
    mode = body.validation_mode or template.validation.mode
    if mode == "strict" and template.output_format == "json" and not template.json_schema:
        raise InvalidField(
            "strict validation of a json template needs a schema", loc=("body", "validation_mode")
        )
    return mode


def new_command(
    body: GenerationCreate,
    *,
    template: TemplateSnapshot,
    model: ModelRef,
    tasks: list[dict[str, Any]],
    count: int,
    mode: Literal["strict", "custom", "none"],
    job_id: str,
    user_id: str,
    now: datetime,
) -> GenerationRequested:
    return GenerationRequested(
        job_id=job_id,
        user_id=user_id,
        template=template,
        model=model,
        count=count,
        tasks=tasks,
        variables=body.variables,
        validation_mode=mode,
        concurrency=body.concurrency,
        max_attempts_per_item=body.max_attempts_per_item,
        max_cost_usd=body.max_cost_usd,
        dedup=body.dedup,
        dataset=SeedRef.model_validate(body.dataset.model_dump()) if body.dataset is not None else None,
        requested_at=now,
        cache=body.cache,
        seed=body.seed,
        mode=body.mode,
        batch_fallback=body.batch_fallback,
    )


def check_batch_mode(command: GenerationRequested) -> None:
    """A batch job needs a provider with a Batch API (only the openai-compatible provider offers one) and a template
    without later stages (those run after the item's earlier answers, in sync mode), LLM judge or near-duplicate
    control (the batch driver judges each line by the template's rules only)."""
    if command.mode == "batch" and command.model.provider != BATCH_PROVIDER:
        raise Unprocessable(
            f"mode 'batch' needs a model of the {BATCH_PROVIDER} provider (the only one with a Batch API); "
            f"{command.model.id!r} is served by {command.model.provider or 'an unknown provider'}",
            code="batch_unsupported",
            details={"field": "mode", "model": command.model.id, "provider": command.model.provider},
        )
    if command.mode == "batch" and command.template.stages:
        raise Unprocessable(
            "mode 'batch' cannot run a multi-stage template: each stage's prompts need the earlier stages' "
            "answers, which a batch only returns hours later; run it in mode 'sync'",
            code="batch_unsupported",
            details={"field": "mode", "stages": [stage.name for stage in command.template.stages]},
        )
    feature = batch_unsupported_feature(command)
    if command.mode == "batch" and feature is not None:
        raise Unprocessable(
            f"mode 'batch' does not run {feature} yet: use mode 'sync' for this template",
            code="batch_unsupported",
            details={"field": "mode", "feature": feature},
        )


def batch_unsupported_feature(command: GenerationRequested) -> str | None:
    """What else a batch job does not run (a line is one answer judged by the template's rules)."""
    template = command.template
    if template.judge is not None:
        return "an LLM judge"
    if template.validation.near_duplicates is not None:
        return "near-duplicate control"
    return None


def command_bytes(command: GenerationRequested) -> int:
    """The size of the command on the wire: its data as JSON plus the envelope around it."""
    return len(command.model_dump_json(by_alias=True).encode()) + ENVELOPE_OVERHEAD_BYTES


def check_command_size(command: GenerationRequested, *, max_bytes: int) -> None:
    """A command larger than a Kafka message may be could never be published: 413 at admission."""
    size = command_bytes(command)
    if size > max_bytes:
        raise PayloadTooLarge(
            f"the job's command ({size} bytes: template, tasks and variables) exceeds the limit of "
            f"{max_bytes} bytes",
            code="command_too_large",
            details={"limit": max_bytes, "size": size},
        )


def estimate_body(command: GenerationRequested) -> dict[str, Any]:
    """A stand-in for the largest provider request body of the job, for the cost estimate at admission (the
    gateway does not render): the template's prompts as written, plus every variable and the largest task as
    JSON (what rendering may splice in), plus the schema for structured output."""
    template = command.template
    largest_task = max((json.dumps(t, ensure_ascii=False) for t in command.tasks), key=len, default="")
    variables = json.dumps({**template.variables, **command.variables}, ensure_ascii=False, default=str)
    body: dict[str, Any] = {
        "messages": [
            {"role": "system", "content": template.prompts.system},
            {"role": "user", "content": template.prompts.user + variables + largest_task},
        ]
    }
    if template.output_format == "json" and template.json_schema:
        body["response_format"] = {"json_schema": {"schema": template.json_schema}}
    return body


def preview_payload(command: GenerationRequested, pricing: dict[str, Any] | None) -> dict[str, Any]:
    """The generator's ``POST /preview`` body for a would-be job: the first items and the model's prices."""
    return {
        "request": command.model_dump(mode="json", by_alias=True),
        "items": min(PREVIEW_ITEMS, command.count),
        "pricing": pricing,
        "max_completion_tokens": (pricing or {}).get("max_completion_tokens"),
    }


# ------------------------------------------------------------------------------------------------ status
def queued_view(command: GenerationRequested) -> dict[str, Any]:
    """A job accepted here that the generator has not seen yet: ``queued`` with zero counts (never a 404)."""
    data = command.model_dump(mode="json", by_alias=True)
    tpl = data["template"]
    return {
        "job_id": command.job_id,
        "status": "queued",
        "template": {"id": tpl["id"], "version": tpl["version"], "name": tpl["name"]},
        "model": data["model"],
        "requested": command.count,
        "counts": {
            "requested": command.count,
            "succeeded": 0,
            "rejected": 0,
            "attempts": 0,
            "item_attempts": 0,
            "in_flight": 0,
        },
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0},
        "stop_reason": None,
        "progress": {"percent": 0.0, "eta_seconds": None},  # as the generator's status (not started: no rate)
        "error": None,
        "cancel_requested": False,
        "timings": {"created_at": data["requested_at"], "started_at": None, "finished_at": None},
        "accepted_by": "gateway",
    }


def undeliverable_view(command: GenerationRequested, reason: str) -> dict[str, Any]:
    """A job whose command the outbox parked (e.g. over Kafka's message limit): ``failed`` with the reason."""
    view = queued_view(command)
    view.update(
        status="failed",
        stop_reason="undeliverable",
        progress={"percent": 0.0, "eta_seconds": 0.0},
        error={"code": "command_undeliverable", "reason": reason},
    )
    return view


def is_terminal(job: Mapping[str, Any]) -> bool:
    return job.get("status") in TERMINAL_STATUSES


def job_or_error(job_id: str, answer: Answer) -> dict[str, Any]:
    """The job of a status answer; 404 as not found, any other failure as the upstream's error."""
    if answer.status == 404:
        raise NotFound("generation job not found", code="job_not_found", details={"job_id": job_id})
    body = answer.body if isinstance(answer.body, dict) else {}
    if answer.status != 200:
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else None
        raise AppError(
            str(message or "job status unavailable"), status_code=answer.status, code="upstream_error"
        )
    return body


def ensure_cancellable(job: Mapping[str, Any]) -> None:
    if is_terminal(job):
        raise Conflict(f"the job already ended ({job.get('status')})", code="job_finished")
