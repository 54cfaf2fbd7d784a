"""The models a running job may use: its model, then the fallbacks it names, one active at a time.

Every slot asks the chain for the active :class:`Route` before a call. A slot whose call failed in a way that
:mod:`~llmts_generator.domain.fallback` says leaves the model calls :meth:`ModelChain.advance` with the route it
used: the first such slot moves the chain on (resolving the next model's provider; a model that cannot be
resolved is skipped), later ones for the same route see the move already made. The move is written to the job
(``model_position``, ``model_active``, ``model_switches``) so a resumed job continues on the same model.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from llmts_common.contracts import FallbackModel, GenerationRequested
from llmts_generator.adapters.metrics import FALLBACKS
from llmts_generator.domain.fallback import UNRESOLVABLE
from llmts_generator.domain.limiter import FairLimiter
from llmts_generator.domain.requests import RequestShape
from llmts_generator.folding import Op
from llmts_providers import Provider

log = logging.getLogger(__name__)

ProviderResolver = Callable[[str, str | None], Awaitable[tuple[Provider, str]]]


@dataclass(frozen=True)
class Route:
    """One resolved model of the chain: the provider adapter, the id it expects, the request shape, the limiter."""

    position: int
    ref: FallbackModel
    provider: Provider
    shape: RequestShape
    limiter: FairLimiter

    @property
    def provider_name(self) -> str:
        return str(getattr(self.provider, "name", self.ref.provider or "openrouter"))

    def label(self) -> dict[str, Any]:
        return {"provider": self.provider_name, "id": self.ref.id, "position": self.position}


class ChainExhausted(Exception):
    """No model of the chain from the asked position on could be resolved."""


class ModelChain:
    def __init__(
        self,
        request: GenerationRequested,
        resolve_provider: ProviderResolver,
        limiter_for: Callable[[str], FairLimiter],
        clock: Callable[[], datetime],
    ) -> None:
        self.request = request
        self.models = request.model.chain()
        self._resolve = resolve_provider
        self._limiter_for = limiter_for
        self._clock = clock
        self._lock = asyncio.Lock()
        self.route: Route | None = None
        self.submit: Callable[[Op], object] | None = None  # the job writer's submit, set once the job runs
        self.streamed: frozenset[str] = frozenset()  # providers whose calls are streamed (STREAM_PROVIDERS)

    @property
    def current(self) -> Route:
        assert self.route is not None, "start() first"
        return self.route

    def concurrency(self) -> dict[str, dict[str, Any]]:
        """Calls at once to the provider of the active model: ``{provider: {current, ceiling, in_flight,
        adaptive, process_cap}}`` (empty before the chain starts)."""
        route = self.route
        return {} if route is None else {route.provider_name: route.limiter.snapshot()}

    def has_next(self) -> bool:
        return self.route is not None and self.route.position + 1 < len(self.models)

    async def start(self, position: int = 0) -> Route:
        """Resolve the model at ``position`` (a resumed job's saved one), else the first resolvable after it."""
        route, skipped = await self._first_resolvable(max(0, min(position, len(self.models) - 1)))
        if route is None:
            raise ChainExhausted("; ".join(skipped) or "no model")
        self.route = route
        return route

    async def advance(self, failed: Route, reason: str, detail: str = "") -> Route | None:
        """Leave ``failed`` for the next resolvable model; the route to use now (None: the chain is exhausted).
        Idempotent per route: slots that failed on a route already left get the active one."""
        async with self._lock:
            current = self.current
            if current.position > failed.position:
                return current
            route, skipped = await self._first_resolvable(failed.position + 1)
            if route is None:
                return None
            self.route = route
            self._record(failed, route, reason, detail, skipped)
            FALLBACKS.labels(failed.provider_name, reason).inc()
            log.warning(
                "job %s: model %s → %s (%s)", self.request.job_id, failed.ref.id, route.ref.id, reason
            )
            return route

    async def _first_resolvable(self, position: int) -> tuple[Route | None, list[str]]:
        skipped: list[str] = []
        for pos in range(position, len(self.models)):
            ref = self.models[pos]
            try:
                provider, model_id = await self._resolve(ref.id, ref.provider)
            except Exception as exc:
                skipped.append(f"{ref.id}: {exc}"[:300])
                continue
            name = str(getattr(provider, "name", ref.provider or "openrouter"))
            shape = replace(
                RequestShape.of(self.request, model_id),
                temperature=ref.temperature
                if ref.temperature is not None
                else self.request.model.temperature,
                max_tokens=ref.max_tokens if ref.max_tokens is not None else self.request.model.max_tokens,
                stream=name in self.streamed,
            )
            return Route(pos, ref, provider, shape, self._limiter_for(name)), skipped
        return None, skipped

    def _record(self, failed: Route, route: Route, reason: str, detail: str, skipped: list[str]) -> None:
        if self.submit is None:
            return
        switch = {
            "from": failed.label(),
            "to": route.label(),
            "reason": reason,
            "detail": detail[:500],
            "skipped": [{"reason": UNRESOLVABLE, "detail": s} for s in skipped],
            "at": self._clock(),
        }
        self.submit(
            Op(
                set={"model_active": route.label(), f"model_switches.{route.position}": switch},
                max={"model_position": route.position},
            )
        )
