"""Use cases of the gateway's generation API: plain async functions, the input first, the ports by keyword.

No handler knows HTTP: the routes parse the request, call one of these and answer with what it returns. A job
is accepted by storing its command in the outbox (``Deps.commands``); reads go to the generator, and while the
command is still on its way the outbox answers ``queued`` (never a 404 for the owner's accepted job).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
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
    ReopenAccepted,
    ResultQuery,
)
from llmts_api.usage import QuotaLimits, QuotaOverride, QuotaPublic, UsagePublic
from llmts_common.contracts import (
    GenerationCancelled,
    GenerationCancelRequested,
    GenerationCompleted,
    GenerationFailed,
    GenerationReopenRequested,
    GenerationRequested,
    ModelRef,
    TemplateSnapshot,
)
from llmts_common.contracts.commands import ReopenKind
from llmts_common.envelope import new_id
from llmts_common.errors import AppError, InvalidField, ServiceUnavailable
from llmts_common.times import iso_z
from llmts_gateway.domain import jobs, quotas, rounds
from llmts_gateway.domain.ports import (
    Answer,
    CommandOutbox,
    EventFeed,
    GeneratorApi,
    ModelCatalog,
    TemplateSource,
    UsageLedger,
)
from llmts_providers.estimate import estimate_cost, estimate_prompt_tokens, pricing_from

# tokens a repair call's instruction may add (the generator lists the validation errors, clipped)
REPAIR_PROMPT_TOKENS = 1_500


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
    usage: UsageLedger | None = None  # quotas are enforced when both usage and quota are set
    quota: quotas.Limits | None = None  # the default limits (settings)
    max_command_bytes: int | None = None
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
    jobs.check_batch_mode(command)
    return command, pricing


async def submit(command: GenerationRequested, *, deps: Deps) -> GenerationAccepted:
    """Accept a job: its command goes into the outbox under the job id (the envelope id consumers dedup on)."""
    await deps.commands.enqueue(command, message_id=command.job_id)
    return GenerationAccepted(job_id=command.job_id, links=jobs.links(command.job_id))


def reservation_micros(command: GenerationRequested, pricing: dict[str, Any] | None) -> int:
    """The job's estimated upper cost (the preview's estimator, prompts from the template as written), capped by
    the request's ``max_cost_usd``; 0 for a free or unpriced model."""
    prices = pricing_from(pricing)
    if prices is None or prices.prompt is None or prices.completion is None:
        return 0
    high = estimate_cost(
        prompt_tokens=estimate_prompt_tokens(jobs.estimate_body(command)),
        count=command.count,
        pricing=prices,
        max_tokens=command.model.max_tokens,
        attempts=command.max_attempts_per_item,
        repair_prompt_tokens=REPAIR_PROMPT_TOKENS,
    ).high.usd
    micros = 0 if high is None else math.ceil(high * quotas.MICROS)
    if command.max_cost_usd is not None:
        micros = min(micros, quotas.to_micros(command.max_cost_usd))
    return micros


async def admit(
    planned: list[tuple[GenerationRequested, dict[str, Any] | None]], *, user_id: str, deps: Deps
) -> list[GenerationRequested]:
    """Size-check the commands, then reserve the user's quota for all of them at once (all or nothing).

    A priced job's command carries its reservation as ``max_cost_usd``, so the generator stops the job before
    it spends more than it reserved."""
    commands = []
    for command, _ in planned:
        if deps.max_command_bytes is not None:
            jobs.check_command_size(command, max_bytes=deps.max_command_bytes)
    if deps.usage is None or deps.quota is None:
        return [command for command, _ in planned]
    now = deps.clock()
    limits = deps.quota.with_overrides(
        (await deps.usage.ledger(user_id, defaults=deps.quota, now=now)).overrides
    )
    reservations = []
    for command, pricing in planned:
        quotas.check_items_per_job(command.count, limits)
        micros = reservation_micros(command, pricing)
        if micros > 0:
            command = command.model_copy(update={"max_cost_usd": quotas.to_usd(micros)})
        commands.append(command)
        reservations.append(quotas.Reservation(command.job_id, micros, command.count, at=now))
    await deps.usage.reserve(user_id, quotas.Ask(tuple(reservations)), defaults=deps.quota, now=now)
    return commands


async def submit_admitted(
    commands: list[GenerationRequested], *, user_id: str, deps: Deps
) -> list[GenerationAccepted]:
    """Store the admitted commands; a job that could not be stored gives its reservation back."""
    accepted = []
    for command in commands:
        try:
            accepted.append(await submit(command, deps=deps))
        except Exception:
            await release_all(commands[len(accepted) :], user_id=user_id, deps=deps)
            raise
    return accepted


async def release_all(commands: list[GenerationRequested], *, user_id: str, deps: Deps) -> None:
    if deps.usage is None or deps.quota is None:
        return
    for command in commands:
        with contextlib.suppress(Exception):  # best effort: the reservation is otherwise released by no event
            await deps.usage.settle(
                user_id, command.job_id, cost_usd=0.0, produced=0, defaults=deps.quota, now=deps.clock()
            )


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
    admitted = await admit([(command, pricing)], user_id=user_id, deps=deps)
    return (await submit_admitted(admitted, user_id=user_id, deps=deps))[0]


async def preview_job(body: GenerationCreate, *, user_id: str, token: str, deps: Deps) -> Answer:
    command, pricing = await build_command(body, user_id=user_id, token=token, deps=deps)
    return await preview(command, pricing, token=token, deps=deps)


async def submit_batch(body: BatchCreate, *, user_id: str, token: str, deps: Deps) -> BatchAccepted:
    """Every job is validated before any is accepted; an error names the job (``job <i>``). Quotas admit the
    batch as a whole: all its jobs are reserved at once, or none is accepted."""
    planned: list[tuple[GenerationRequested, dict[str, Any] | None]] = []
    for i, job in enumerate(body.jobs):
        if job.dry_run:
            raise InvalidField("dry_run is not supported in a batch", loc=("body", "jobs", i, "dry_run"))
        try:
            planned.append(await build_command(job, user_id=user_id, token=token, deps=deps))
        except AppError as exc:
            exc.details = {"job": i, "error": exc.details}
            exc.message = f"job {i}: {exc.message}"
            raise
    admitted = await admit(planned, user_id=user_id, deps=deps)
    return BatchAccepted(jobs=await submit_admitted(admitted, user_id=user_id, deps=deps))


# ------------------------------------------------------------------------------------------------ reading
async def job_status(job_id: str, *, user_id: str, token: str, deps: Deps) -> Answer:
    """The generator's view of the job, or ``queued`` from the outbox while the command is in transit (``failed``
    with the reason when the outbox parked it: it can never be delivered)."""
    answer = await deps.generator.get_job(job_id, token=token)
    if answer.status == 404:
        accepted = await deps.commands.accepted_generation(job_id)
        if accepted is not None and accepted.user_id == user_id:
            parked = await deps.commands.undeliverable(job_id)
            if parked is None:
                return Answer(200, jobs.queued_view(accepted))
            await release_undeliverable(accepted, deps=deps)  # in case the park hook never ran
            return Answer(200, jobs.undeliverable_view(accepted, parked))
    return answer


async def cancel(job_id: str, *, user_id: str, token: str, deps: Deps) -> CancelAccepted:
    """Ask the generator to cancel (no new call, calls at the provider awaited and billed, finished items kept);
    409 once the job ended."""
    job = jobs.job_or_error(job_id, await job_status(job_id, user_id=user_id, token=token, deps=deps))
    jobs.ensure_cancellable(job)
    await deps.commands.enqueue(GenerationCancelRequested(job_id=job_id, user_id=user_id))
    return CancelAccepted(job_id=job_id)


async def reopen(
    job_id: str,
    kind: ReopenKind,
    *,
    count: int = 0,
    max_cost_usd: float | None = None,
    user_id: str,
    token: str,
    deps: Deps,
) -> ReopenAccepted:
    """A new round of a finished job (extend / resume / retry-rejected): checked against the job's status (409),
    the items per job (422), admitted against the caller's quota like a new job (its own reservation), then sent
    to the generator as a command through the outbox."""
    job = jobs.job_or_error(job_id, await job_status(job_id, user_id=user_id, token=token, deps=deps))
    plan = rounds.plan(job, kind, count, max_count=deps.max_count)
    cap = max_cost_usd
    if deps.usage is not None and deps.quota is not None:
        now = deps.clock()
        limits = deps.quota.with_overrides(
            (await deps.usage.ledger(user_id, defaults=deps.quota, now=now)).overrides
        )
        quotas.check_items_per_job(plan.items, limits)
        micros = rounds.estimate_micros(job, plan.items, max_cost_usd)
        if micros > 0:
            cap = quotas.to_usd(micros)
        key = rounds.reservation_key(job_id, plan.round)
        reservation = quotas.Reservation(key, micros, plan.items, at=now)
        await deps.usage.reserve(user_id, quotas.Ask((reservation,)), defaults=deps.quota, now=now)
    command = GenerationReopenRequested(
        job_id=job_id,
        user_id=user_id,
        kind=kind,
        count=count if kind == "extend" else 0,
        max_cost_usd=cap,
        requested_at=deps.clock(),
    )
    await deps.commands.enqueue(command, message_id=deps.new_id())
    return ReopenAccepted(
        job_id=job_id,
        links=jobs.links(job_id),
        kind=kind,
        round=plan.round,
        items=plan.items,
    )


async def result(job_id: str, query: ResultQuery, *, token: str, deps: Deps) -> Answer:
    params = query.model_dump(exclude_none=True)
    return await deps.generator.get_result(job_id, params=params, token=token)


async def history(query: HistoryQuery, *, token: str, deps: Deps) -> Answer:
    return await deps.generator.history(params=query.upstream_params(), token=token)


async def history_job(job_id: str, *, attempts_limit: int, token: str, deps: Deps) -> Answer:
    return await deps.generator.history_job(job_id, attempts_limit=attempts_limit, token=token)


# ------------------------------------------------------------------------------------------------ quotas
def _ledger_port(deps: Deps) -> tuple[UsageLedger, quotas.Limits]:
    if deps.usage is None or deps.quota is None:
        raise ServiceUnavailable("quotas are not available")
    return deps.usage, deps.quota


async def settle_job(
    event: GenerationCompleted | GenerationFailed | GenerationCancelled, *, deps: Deps
) -> bool:
    """A job ended: its reservation becomes its billed cost, unproduced items go back (idempotent)."""
    usage, defaults = _ledger_port(deps)
    later = event.round > 1  # a later round settles its own reservation with what the round added and cost
    return await usage.settle(
        event.user_id,
        rounds.reservation_key(event.job_id, event.round),
        cost_usd=event.round_cost_usd or 0.0 if later else event.usage.cost_usd,
        produced=event.round_succeeded or 0 if later else event.succeeded,
        defaults=defaults,
        now=deps.clock(),
    )


async def release_undeliverable(command: GenerationRequested, *, deps: Deps) -> bool:
    """The outbox parked the job's command (it can never run): give back everything its admission reserved
    (idempotent, like every settlement)."""
    if deps.usage is None or deps.quota is None:
        return False
    usage, defaults = deps.usage, deps.quota
    return await usage.settle(
        command.user_id, command.job_id, cost_usd=0.0, produced=0, defaults=defaults, now=deps.clock()
    )


async def my_usage(user_id: str, *, deps: Deps) -> UsagePublic:
    usage, defaults = _ledger_port(deps)
    now = deps.clock()
    ledger = await usage.ledger(user_id, defaults=defaults, now=now)
    limits = defaults.with_overrides(ledger.overrides)
    return UsagePublic.model_validate(quotas.usage_view(ledger, limits, now))


async def get_quota(user_id: str, *, deps: Deps) -> QuotaPublic:
    usage, defaults = _ledger_port(deps)
    ledger = await usage.ledger(user_id, defaults=defaults, now=deps.clock())
    return QuotaPublic(
        user_id=user_id,
        overrides=QuotaOverride.model_validate(ledger.overrides),
        effective=QuotaLimits.model_validate(defaults.with_overrides(ledger.overrides).to_dict()),
    )


async def set_quota(user_id: str, overrides: QuotaOverride, *, deps: Deps) -> QuotaPublic:
    """Replace the user's overrides (``{}`` — or ``DELETE`` — restores the defaults)."""
    usage, _ = _ledger_port(deps)
    await usage.set_overrides(user_id, overrides.model_dump(exclude_none=True))
    return await get_quota(user_id, deps=deps)


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
        return {"id": None, "type": "snapshot", "time": iso_z(self.deps.clock()), "data": body}

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
