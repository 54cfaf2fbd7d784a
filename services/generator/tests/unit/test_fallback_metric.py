"""Every move along a fallback chain is counted by provider and reason (the LlmtsBreakerOpen alert)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prometheus_client import REGISTRY

from llmts_common.contracts import GenerationRequested, ModelRef, Prompts, TemplateSnapshot
from llmts_generator.chain import ModelChain
from llmts_generator.domain.fallback import BREAKER_OPEN
from llmts_generator.domain.limiter import FairLimiter


class NamedProvider:
    def __init__(self, name: str) -> None:
        self.name = name


async def _resolve(model_id: str, provider: str | None) -> tuple[Any, str]:
    return NamedProvider(provider or "openrouter"), model_id


def _request() -> GenerationRequested:
    model = ModelRef.model_validate(
        {"provider": "ollama", "id": "primary", "fallback": [{"provider": "openrouter", "id": "backup"}]}
    )
    return GenerationRequested(
        job_id="job-fallback-metric",
        user_id="u1",
        template=TemplateSnapshot(
            id="t", version=1, name="n", owner_id="u1", prompts=Prompts(user="hi"), schema={"type": "object"}
        ),
        model=model,
        count=3,
        requested_at=datetime.now(UTC),
    )


def _count(provider: str, reason: str) -> float:
    labels = {"provider": provider, "reason": reason}
    return REGISTRY.get_sample_value("llmts_generator_fallbacks_total", labels) or 0.0


async def test_an_open_breaker_move_is_counted_once() -> None:
    chain = ModelChain(_request(), _resolve, lambda _name: FairLimiter(2), lambda: datetime.now(UTC))
    primary = await chain.start()
    before = _count("ollama", BREAKER_OPEN)
    moved = await chain.advance(primary, BREAKER_OPEN, "most recent item attempts failed")
    assert moved is not None
    assert moved.ref.id == "backup"
    assert (
        await chain.advance(primary, BREAKER_OPEN) is moved
    )  # other slots on the left route: no second move
    assert _count("ollama", BREAKER_OPEN) == before + 1
