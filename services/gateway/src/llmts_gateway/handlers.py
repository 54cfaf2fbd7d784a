"""Use cases of the gateway's generation API: plain async functions, the input first, the ports by keyword.

No handler knows HTTP: the routes parse the request, call one of these and answer with what it returns. A job
is accepted by storing its command in the outbox (``Deps.commands``); reads go to the generator, and while the
command is still on its way the outbox answers ``queued`` (never a 404 for the owner's accepted job).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from llmts_api.generation import (
    BatchAccepted,
    BatchCreate,
    CancelAccepted,
    GenerationAccepted,
    GenerationCreate,
    HistoryQuery,
    ResultQuery,
)
from llmts_common.contracts import GenerationCancelRequested, GenerationRequested, ModelRef, TemplateSnapshot
from llmts_common.envelope import new_id
from llmts_common.errors import AppError, ServiceUnavailable, Unprocessable
from llmts_gateway.domain import jobs
from llmts_gateway.domain.ports import (
    Answer,
    CommandOutbox,
    EventFeed,
    GeneratorApi,
    ModelCatalog,
    TemplateSource,
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Deps:
    templates: TemplateSource
    catalog: ModelCatalog
    generator: GeneratorApi
    commands: CommandOutbox
    events: EventFeed
    max_count: int
    new_id: Callable[[], str] = new_id
    clock: Callable[[], datetime] = _utcnow


# ------------------------------------------------------------------------------------------------ accepting
async def resolve_template(template_id: str, *, token: str, templates: TemplateSource) -> TemplateSnapshot:
    answer = await templates.get_template(template_id, token=token)
    return jobs.template_from_answer(template_id, answer)


async def check_model(
    model: ModelRef, *, token: str, catalog: ModelCatalog
) -> tuple[ModelRef, dict[str, Any] | None]:
    """The model (providers filled in, its fallbacks' too) and the primary's pricing; every model of the chain must
    be known to the catalog; an unreachable catalog does not block generation."""
    try:
        answer = await catalog.get_model(model.id, provider=model.provider, token=token)
        primary, pricing = jobs.model_from_catalog(model, answer)
        fallbacks = []
        for position, fallback in enumerate(model.fallback):
            found = await catalog.get_model(fallback.id, provider=fallback.provider, token=token)
            fallbacks.append(jobs.fallback_from_catalog(fallback, found, position))
    except ServiceUnavailable:
        return model, None
    return primary.model_copy(update={"fallback": fallbacks}), pricing


async def build_command(
    body: GenerationCreate, *, user_id: str, token: str, deps: Deps
) -> tuple[GenerationRequested, dict[str, Any] | None]:
    """The command for a request, and the model's pricing; every check that can be made now is made now."""
    template = await resolve_template(body.template_id, token=token, templates=deps.templates)
    tasks, count = jobs.plan_items(body, template, max_count=deps.max_count)
    model, pricing = await check_model(jobs.choose_model(body, template), token=token, catalog=deps.catalog)
    mode = jobs.validation_mode(body, template)
    command = jobs.new_command(
        body,
        template=template,
        model=model,
        tasks=tasks,
        count=count,
        mode=mode,
        job_id=deps.new_id(),
        user_id=user_id,
        now=deps.clock(),
    )
    return command, pricing


async def submit(command: GenerationRequested, *, deps: Deps) -> GenerationAccepted:
    """Accept a job: its command goes into the outbox under the job id (the envelope id consumers dedup on)."""
    await deps.commands.enqueue(command, message_id=command.job_id)
    return GenerationAccepted(job_id=command.job_id, links=jobs.links(command.job_id))


async def preview(
    command: GenerationRequested, pricing: dict[str, Any] | None, *, token: str, deps: Deps
) -> Answer:
    """The generator's preview of a would-be job (rendered prompts, provider request body, cost range)."""
    answer = await deps.generator.preview(jobs.preview_payload(command, pricing), token=token)
    if not answer.ok or not isinstance(answer.body, dict):
        return answer
    body = {
        **answer.body,
        "dry_run": True,
        "template": {"id": command.template.id, "version": command.template.version},
    }
    return Answer(200, body)


async def create_or_preview(
    body: GenerationCreate, *, user_id: str, token: str, deps: Deps
) -> GenerationAccepted | Answer:
    """``POST /generate``: the accepted job, or its preview when ``dry_run``."""
    command, pricing = await build_command(body, user_id=user_id, token=token, deps=deps)
    if body.dry_run:
        return await preview(command, pricing, token=token, deps=deps)
    return await submit(command, deps=deps)


async def preview_job(body: GenerationCreate, *, user_id: str, token: str, deps: Deps) -> Answer:
    command, pricing = await build_command(body, user_id=user_id, token=token, deps=deps)
    return await preview(command, pricing, token=token, deps=deps)


async def submit_batch(body: BatchCreate, *, user_id: str, token: str, deps: Deps) -> BatchAccepted:
    """Every job is validated before any is accepted; an error names the job (``job <i>``)."""
    commands: list[GenerationRequested] = []
    for i, job in enumerate(body.jobs):
        if job.dry_run:
            raise Unprocessable("dry_run is not supported in a batch", details={"job": i})
        try:
            command, _ = await build_command(job, user_id=user_id, token=token, deps=deps)
        except AppError as exc:
            exc.details = {"job": i, "error": exc.details}
            exc.message = f"job {i}: {exc.message}"
            raise
        commands.append(command)
    return BatchAccepted(jobs=[await submit(command, deps=deps) for command in commands])


# ------------------------------------------------------------------------------------------------ reading
async def job_status(job_id: str, *, user_id: str, token: str, deps: Deps) -> Answer:
    """The generator's view of the job, or ``queued`` from the outbox while the command is in transit."""
    answer = await deps.generator.get_job(job_id, token=token)
    if answer.status == 404:
        accepted = await deps.commands.accepted_generation(job_id)
        if accepted is not None and accepted.user_id == user_id:
            return Answer(200, jobs.queued_view(accepted))
    return answer


async def cancel(job_id: str, *, user_id: str, token: str, deps: Deps) -> CancelAccepted:
    """Ask the generator to cancel (in-flight calls abandoned, finished items kept); 409 once the job ended."""
    job = jobs.job_or_error(job_id, await job_status(job_id, user_id=user_id, token=token, deps=deps))
    jobs.ensure_cancellable(job)
    await deps.commands.enqueue(GenerationCancelRequested(job_id=job_id, user_id=user_id))
    return CancelAccepted(job_id=job_id)


async def result(job_id: str, query: ResultQuery, *, token: str, deps: Deps) -> Answer:
    params = query.model_dump(exclude_none=True)
    return await deps.generator.get_result(job_id, params=params, token=token)


async def history(query: HistoryQuery, *, token: str, deps: Deps) -> Answer:
    return await deps.generator.history(params=query.upstream_params(), token=token)


async def history_job(job_id: str, *, attempts_limit: int, token: str, deps: Deps) -> Answer:
    return await deps.generator.history_job(job_id, attempts_limit=attempts_limit, token=token)


# ------------------------------------------------------------------------------------------------ watching
class JobWatch:
    """Replay-then-stream of one job for one client (shared by SSE and WebSocket).

    Subscribes to the event feed BEFORE reading the state, so nothing published in between is lost; events
    already reflected in the snapshot may be delivered again (clients treat events as idempotent by id/index).
    While idle, the state is re-read every ``poll_s`` so a terminal event missed by this replica still ends the
    stream.
    """

    def __init__(self, job_id: str, *, user_id: str, token: str, deps: Deps, poll_s: float = 5.0) -> None:
        self.job_id = job_id
        self.user_id = user_id
        self.token = token
        self.deps = deps
        self.poll_s = poll_s
        self.key = f"job:{job_id}"
        self.queue: asyncio.Queue[dict[str, Any]] | None = None

    async def _status(self) -> Answer:
        return await job_status(self.job_id, user_id=self.user_id, token=self.token, deps=self.deps)

    async def open(self) -> dict[str, Any]:
        """Subscribe, then the job's current state; 404 (or the upstream's error) before any stream starts."""
        self.queue = self.deps.events.subscribe(self.key)
        try:
            return jobs.job_or_error(self.job_id, await self._status())
        except BaseException:
            self.close()
            raise

    def snapshot_event(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"id": None, "type": "snapshot", "time": self.deps.clock().isoformat(), "data": body}

    async def events(self, snapshot: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The snapshot, then every event until the terminal one (or a re-read state that is terminal)."""
        assert self.queue is not None, "open() first"
        yield self.snapshot_event(snapshot)
        if jobs.is_terminal(snapshot):
            return
        while True:
            try:
                event = await asyncio.wait_for(self.queue.get(), timeout=self.poll_s)
            except TimeoutError:
                answer = await self._status()
                if answer.ok and isinstance(answer.body, dict) and jobs.is_terminal(answer.body):
                    yield self.snapshot_event(answer.body)
                    return
                continue
            yield event
            if event.get("type") in jobs.TERMINAL_EVENT_TYPES:
                return

    def close(self) -> None:
        if self.queue is not None:
            with contextlib.suppress(Exception):
                self.deps.events.unsubscribe(self.key, self.queue)
            self.queue = None
