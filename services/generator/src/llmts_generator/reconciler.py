"""The cost reconciler: a background task of the generator that looks the marked attempts up in the provider's
own books (OpenRouter ``GET /generation?id=``) and stores what they say next to what the response reported.

Durable: the work list is a query (attempts still ``due`` or sampled, ``adapters/reconciliations``), so a
restarted process goes on where the last one stopped; idempotent: each write is conditional on the attempt still
waiting. Bounded: at most ``per_second`` lookups a second, ``batch`` per pass. A lookup is made ``delay_s`` after
the call at the earliest (the provider's stats lag a few seconds); a record not there yet is asked again later
(the delay doubling per try) and given up after ``max_tries``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from llmts_generator.adapters.reconciliations import MongoReconciliations
from llmts_generator.domain.costs import reconciled_fields, sample_threshold
from llmts_providers import ProviderError
from llmts_providers.models import GenerationStats

log = logging.getLogger("llmts.generator.reconciler")

MAX_DEFER_S = 3600.0


class GenerationBooks(Protocol):
    """A provider that keeps generation records (``OpenRouterProvider``)."""

    async def generation_stats(self, generation_id: str) -> GenerationStats | None: ...


@dataclass(frozen=True)
class ReconcileConfig:
    sample_rate: float = 0.02
    delay_s: float = 10.0
    interval_s: float = 10.0
    batch: int = 100
    per_second: float = 5.0
    max_tries: int = 6
    max_age_s: float = 7 * 86400.0

    @property
    def threshold(self) -> int:
        return sample_threshold(self.sample_rate)


class CostReconciler:
    def __init__(
        self,
        store: MongoReconciliations,
        books_of: Callable[[str], GenerationBooks | None],
        config: ReconcileConfig,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self._books_of = books_of
        self.config = config
        self._clock = clock

    async def run(self, stopping: asyncio.Event) -> None:
        """Background task: a pass, then another at once while passes come back full, else after ``interval_s``."""
        while not stopping.is_set():
            done = 0
            try:
                done = await self.pass_once(stopping)
            except Exception as exc:
                log.warning("cost reconciliation pass failed: %s", exc)
            if done < self.config.batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), self.config.interval_s)

    async def pass_once(self, stopping: asyncio.Event | None = None) -> int:
        """Look up the attempts waiting now (at most ``batch``, paced); how many were looked at."""
        cfg = self.config
        now = self._clock()
        waiting = await self.store.waiting(
            before=now - timedelta(seconds=cfg.delay_s),
            since=now - timedelta(seconds=cfg.max_age_s),
            threshold=cfg.threshold,
            limit=cfg.batch,
        )
        pause = 1.0 / cfg.per_second if cfg.per_second > 0 else 0.0
        for n, attempt in enumerate(waiting):
            if stopping is not None and stopping.is_set():
                return n
            if n and pause:
                await asyncio.sleep(pause)
            await self.reconcile(attempt)
        return len(waiting)

    async def reconcile(self, attempt: dict[str, Any]) -> None:
        """Look one attempt up and settle, defer or give it up."""
        attempt_id = str(attempt["_id"])
        tries = int(attempt.get("reconcile_tries") or 0) + 1
        books = self._books_of(str(attempt.get("provider")))
        if books is None:
            await self._later(attempt_id, tries, "the provider is not configured in this process")
            return
        try:
            stats = await books.generation_stats(str(attempt["generation_id"]))
        except ProviderError as exc:
            if exc.retryable:
                await self._later(attempt_id, tries, str(exc))
            else:
                await self.store.give_up(attempt_id, tries=tries, error=str(exc))
            return
        if stats is None:
            await self._later(attempt_id, tries, "no generation record yet")
            return
        await self.store.settle(attempt_id, reconciled_fields(stats, now=self._clock()))

    async def _later(self, attempt_id: str, tries: int, error: str) -> None:
        if tries >= self.config.max_tries:
            await self.store.give_up(attempt_id, tries=tries, error=error)
            return
        wait = min(MAX_DEFER_S, self.config.delay_s * 2 ** (tries - 1))
        await self.store.defer(
            attempt_id, until=self._clock() + timedelta(seconds=wait), tries=tries, error=error
        )


def books_from(factory: Any) -> Callable[[str], GenerationBooks | None]:
    """The configured provider of that name when it keeps generation records (a ``ProviderFactory``)."""

    def books_of(name: str) -> GenerationBooks | None:
        try:
            if not factory.configured(name):
                return None
            provider = factory.get(name)
        except ValueError:
            return None
        return provider if callable(getattr(provider, "generation_stats", None)) else None

    return books_of
