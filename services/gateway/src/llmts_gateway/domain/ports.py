"""What the gateway's use cases need from the outside world.

Implemented in ``llmts_gateway.adapters`` (HTTP calls to the services behind the gateway, the command outbox,
the in-process event hub); faked in memory under ``services/gateway/tests``. The upstream ports hand back the
service's answer as it is (:class:`Answer`): what a status code means is a rule of the domain, not of the adapter.
An unreachable service raises ``ServiceUnavailable`` (503).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from llmts_common.contracts import GenerationCancelRequested, GenerationReopenRequested, GenerationRequested
from llmts_gateway.domain.quotas import Ask, Ledger, Limits


@dataclass(frozen=True)
class Answer:
    """An upstream service's HTTP answer: status code and JSON body (an error body when it was not JSON)."""

    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return self.status == 200


class TemplateSource(Protocol):
    """The templates service, read with the caller's token (so a private template of another user is refused)."""

    async def get_template(self, template_id: str, *, token: str) -> Answer: ...


class ModelCatalog(Protocol):
    """The catalog service: one model's record (provider, pricing), ``provider`` narrowing the lookup."""

    async def get_model(self, model_id: str, *, provider: str | None, token: str) -> Answer: ...


class GeneratorApi(Protocol):
    """The generator's read API (it verifies the token itself: another user's job is 404 there)."""

    async def get_job(self, job_id: str, *, token: str) -> Answer: ...

    async def get_result(self, job_id: str, *, params: dict[str, Any], token: str) -> Answer: ...

    async def history(self, *, params: dict[str, Any], token: str) -> Answer: ...

    async def history_job(self, job_id: str, *, attempts_limit: int, token: str) -> Answer: ...

    async def preview(self, payload: dict[str, Any], *, token: str) -> Answer: ...


class CommandOutbox(Protocol):
    """The gateway's outbox of generation commands: accepting a command is storing it (then a fast publish)."""

    async def enqueue(
        self,
        command: GenerationRequested | GenerationCancelRequested | GenerationReopenRequested,
        *,
        message_id: str | None = None,
    ) -> None:
        """Store the command durably and try to publish it; raises ``ServiceUnavailable`` if it cannot be
        stored."""

    async def accepted_generation(self, job_id: str) -> GenerationRequested | None:
        """The ``GenerationRequested`` accepted under ``job_id`` (still in the outbox), if any."""

    async def undeliverable(self, job_id: str) -> str | None:
        """Why the command accepted under ``job_id`` can never be delivered (parked by the outbox), or None."""


class EventFeed(Protocol):
    """Live events of a job (key ``job:<id>``) for the clients watching it."""

    def subscribe(self, key: str) -> asyncio.Queue[dict[str, Any]]: ...

    def unsubscribe(self, key: str, q: asyncio.Queue[dict[str, Any]]) -> None: ...


class UsageLedger(Protocol):
    """Each user's quota ledger (``llmts_gateway.domain.quotas``): one record per user, updated atomically."""

    async def reserve(self, user_id: str, ask: Ask, *, defaults: Limits, now: datetime) -> None:
        """Hold the ask's reservations, all or none; raises ``QuotaExceeded``/``BudgetExceeded`` when a limit
        (the defaults with the user's overrides) would be passed. Reserving jobs already held changes nothing."""

    async def settle(
        self, user_id: str, job_id: str, *, cost_usd: float, produced: int, defaults: Limits, now: datetime
    ) -> bool:
        """Replace the job's reservation by its billed cost (``False``: nothing held — unknown or settled)."""

    async def ledger(self, user_id: str, *, defaults: Limits, now: datetime) -> Ledger:
        """The user's ledger as it counts at ``now`` (an empty one for a user never seen)."""

    async def set_overrides(self, user_id: str, overrides: dict[str, Any]) -> None:
        """Replace the user's overrides (``{}`` clears them)."""


class ComparisonStore(Protocol):
    """The gateway's comparison records (issue 18 #6), private to their owner."""

    async def insert(self, record: dict[str, Any]) -> None: ...

    async def get(self, comparison_id: str, *, owner_id: str) -> dict[str, Any] | None:
        """The owner's comparison, or None (unknown, or another user's)."""

    async def delete(self, comparison_id: str) -> None: ...
