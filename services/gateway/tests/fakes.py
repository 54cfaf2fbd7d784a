"""In-memory fakes of the gateway's ports (``llmts_gateway.domain.ports``) for the unit tier.

Tokens are user ids here: the fake generator treats the bearer token as the caller, so "another user's job" is
a job stored under a different token, exactly the generator's 404-for-others rule.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from llmts_common.contracts import GenerationCancelRequested, GenerationRequested
from llmts_common.errors import ServiceUnavailable, error_body
from llmts_gateway.domain import quotas
from llmts_gateway.domain.ports import Answer
from llmts_gateway.handlers import Deps

NOW = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}},
    "required": ["title"],
    "additionalProperties": False,
}


def template_doc(template_id: str = "tpl1", owner_id: str = "alice", **over: Any) -> dict[str, Any]:
    """A template as the templates service answers ``GET /templates/{id}`` (identity + document)."""
    doc: dict[str, Any] = {
        "id": template_id,
        "owner_id": owner_id,
        "version": 3,
        "created_at": "2026-12-01T10:00:00+00:00",
        "updated_at": "2026-12-02T10:00:00+00:00",
        "name": "Reviews",
        "description": "",
        "category": None,
        "tags": [],
        "visibility": "private",
        "output": {"format": "json"},
        "prompts": {"system": "You write reviews.", "user": "Review {{ index }} of {{ product }}."},
        "schema": SCHEMA,
        "validation": {"mode": "strict", "rules": []},
        "variables": {"product": "a kettle"},
        "tasks": [],
        "model": {"provider": "openrouter", "id": "openai/gpt-4o-mini"},
        "metadata": {},
    }
    doc.update(over)
    return doc


class FakeTemplates:
    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.calls: list[tuple[str, str]] = []

    def add(self, template_id: str = "tpl1", **over: Any) -> None:
        self.answers[template_id] = Answer(200, template_doc(template_id, **over))

    async def get_template(self, template_id: str, *, token: str) -> Answer:
        self.calls.append((template_id, token))
        return self.answers.get(template_id, Answer(404, error_body("template_not_found", "not found")))


class FakeCatalog:
    def __init__(self) -> None:
        self.models: dict[str, dict[str, Any]] = {}
        self.answer: Answer | None = None  # forces an answer (e.g. a 500) when set
        self.unreachable = False
        self.calls: list[tuple[str, str | None]] = []

    def add(self, model_id: str, provider: str = "openrouter", pricing: dict[str, Any] | None = None) -> None:
        self.models[model_id] = {"id": model_id, "provider": provider, "pricing": pricing}

    async def get_model(self, model_id: str, *, provider: str | None, token: str) -> Answer:
        self.calls.append((model_id, provider))
        if self.unreachable:
            raise ServiceUnavailable("the catalog service is unavailable")
        if self.answer is not None:
            return self.answer
        record = self.models.get(model_id)
        if record is None or (provider is not None and record["provider"] != provider):
            return Answer(404, error_body("model_not_found", "unknown model"))
        return Answer(200, record)


class FakeGenerator:
    """Jobs by id with their owner (= the token that may read them)."""

    def __init__(self) -> None:
        self.jobs: dict[str, tuple[str, dict[str, Any]]] = {}
        self.answer: Answer | None = None  # forces the status answer (e.g. a 503) when set
        self.on_get_job: Callable[[str], None] | None = None
        self.calls: list[tuple[str, Any]] = []

    def put(self, job_id: str, owner: str, status: str = "running", **extra: Any) -> None:
        self.jobs[job_id] = (owner, {"job_id": job_id, "status": status, **extra})

    async def get_job(self, job_id: str, *, token: str) -> Answer:
        self.calls.append(("get_job", job_id))
        if self.on_get_job is not None:
            self.on_get_job(job_id)
        if self.answer is not None:
            return self.answer
        owner, body = self.jobs.get(job_id, (None, None))
        if body is None or owner != token:
            return Answer(404, error_body("job_not_found", "generation job not found"))
        return Answer(200, dict(body))

    async def get_result(self, job_id: str, *, params: dict[str, Any], token: str) -> Answer:
        self.calls.append(("get_result", (job_id, params)))
        return Answer(200, {"items": [], "total": 0})

    async def history(self, *, params: dict[str, Any], token: str) -> Answer:
        self.calls.append(("history", params))
        return Answer(200, {"items": [], "total": 0, "limit": params["limit"], "offset": params["offset"]})

    async def history_job(self, job_id: str, *, attempts_limit: int, token: str) -> Answer:
        self.calls.append(("history_job", (job_id, attempts_limit)))
        return Answer(404, error_body("job_not_found", "generation job not found"))

    async def preview(self, payload: dict[str, Any], *, token: str) -> Answer:
        self.calls.append(("preview", payload))
        request = payload["request"]
        items = [
            {"index": i, "system": "", "user": f"item {i}", "request_body": {}}
            for i in range(payload["items"])
        ]
        return Answer(
            200, {"items": items, "count": request["count"], "model": request["model"], "estimate": {}}
        )


class FakeCommands:
    def __init__(self) -> None:
        self.enqueued: list[tuple[GenerationRequested | GenerationCancelRequested, str | None]] = []
        self.parked: dict[str, str] = {}  # job id -> why the outbox parked its command

    async def enqueue(
        self, command: GenerationRequested | GenerationCancelRequested, *, message_id: str | None = None
    ) -> None:
        self.enqueued.append((command, message_id))

    async def accepted_generation(self, job_id: str) -> GenerationRequested | None:
        for command, _ in self.enqueued:
            if isinstance(command, GenerationRequested) and command.job_id == job_id:
                return command
        return None

    async def undeliverable(self, job_id: str) -> str | None:
        return self.parked.get(job_id)

    def of_type(self, kind: type[Any]) -> list[Any]:
        return [c for c, _ in self.enqueued if isinstance(c, kind)]


class FakeFeed:
    def __init__(self) -> None:
        self.subs: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)

    def subscribe(self, key: str) -> asyncio.Queue[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.subs[key].add(q)
        return q

    def unsubscribe(self, key: str, q: asyncio.Queue[dict[str, Any]]) -> None:
        self.subs[key].discard(q)

    def publish(self, key: str, event: dict[str, Any]) -> None:
        for q in self.subs[key]:
            q.put_nowait(event)

    def watchers(self, key: str) -> int:
        return len(self.subs[key])


class FakeLedger:
    """The usage ledger in memory, by the domain's rules (``quotas.refusal`` / ``admitted`` / ``settled``)."""

    def __init__(self) -> None:
        self.ledgers: dict[str, quotas.Ledger] = {}

    def _current(self, user_id: str, defaults: quotas.Limits, now: datetime) -> quotas.Ledger:
        stored = self.ledgers.get(user_id, quotas.Ledger(user_id))
        period = defaults.with_overrides(stored.overrides).budget_period
        self.ledgers[user_id] = quotas.rolled_over(stored, now, period)
        return self.ledgers[user_id]

    async def reserve(self, user_id: str, ask: quotas.Ask, *, defaults: quotas.Limits, now: datetime) -> None:
        ledger = self._current(user_id, defaults, now)
        if all(r.job_id in ledger.jobs for r in ask.reservations):
            return
        problem = quotas.refusal(ledger, ask, defaults.with_overrides(ledger.overrides), now)
        if problem is not None:
            raise problem
        held = quotas.Ask(tuple(replace(r, day=ledger.day) for r in ask.reservations))
        self.ledgers[user_id] = quotas.admitted(ledger, held)

    async def settle(
        self,
        user_id: str,
        job_id: str,
        *,
        cost_usd: float,
        produced: int,
        defaults: quotas.Limits,
        now: datetime,
    ) -> bool:
        ledger = self._current(user_id, defaults, now)
        change = quotas.settlement(ledger, job_id, cost_usd=cost_usd, produced=produced)
        if change is None:
            return False
        self.ledgers[user_id] = quotas.settled(ledger, change)
        return True

    async def ledger(self, user_id: str, *, defaults: quotas.Limits, now: datetime) -> quotas.Ledger:
        return self._current(user_id, defaults, now)

    async def set_overrides(self, user_id: str, overrides: dict[str, Any]) -> None:
        stored = self.ledgers.get(user_id, quotas.Ledger(user_id))
        self.ledgers[user_id] = replace(stored, overrides=dict(overrides))


class Fakes:
    def __init__(
        self,
        max_count: int = 500,
        quota: quotas.Limits | None = None,
        max_command_bytes: int | None = None,
    ) -> None:
        self.templates = FakeTemplates()
        self.catalog = FakeCatalog()
        self.generator = FakeGenerator()
        self.commands = FakeCommands()
        self.feed = FakeFeed()
        self.usage = FakeLedger()
        self.now = NOW
        ids = (f"job{n}" for n in itertools.count(1))
        self.deps = Deps(
            templates=self.templates,
            catalog=self.catalog,
            generator=self.generator,
            commands=self.commands,
            events=self.feed,
            max_count=max_count,
            usage=self.usage if quota is not None else None,
            quota=quota,
            max_command_bytes=max_command_bytes,
            new_id=lambda: next(ids),
            clock=lambda: self.now,
        )
