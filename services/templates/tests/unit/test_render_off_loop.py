"""Issue 14 finding 1 in the templates service: validation compiles the prompts in the render pool under its
hard deadline, so a prompt that takes seconds to compile is reported as an error instead of stalling the event
loop; what compiles is inspected as before."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from llmts_templates.checks import validate_payload, validate_payload_with
from llmts_templating.pool import RenderPool
from llmts_templating.render import RenderLimits

SLOW_TO_COMPILE = "{% set x = [1] * 10 %}" + "{% set y = x == x %}" * 2000


@pytest.fixture(scope="module")
def pool() -> Iterator[RenderPool]:
    p = RenderPool(RenderLimits(max_render_seconds=0.3), workers=1, grace_seconds=0.1)
    yield p
    p.close()


def doc(user: str) -> dict[str, object]:
    return {"name": "x", "output": {"format": "text"}, "prompts": {"user": user}, "variables": {"a": 1}}


def test_a_prompt_too_slow_to_compile_is_an_error_and_the_loop_keeps_turning(pool: RenderPool) -> None:
    async def go() -> tuple[int, list[tuple[str, str | None]]]:
        ticks = 0
        check = asyncio.create_task(validate_payload_with(doc(SLOW_TO_COMPILE), pool))
        while not check.done():
            ticks += 1
            await asyncio.sleep(0.01)
        report = await check
        return ticks, [(e.path, e.kind) for e in report.errors]

    ticks, errors = asyncio.run(go())
    assert errors == [("prompts.user", "limit_exceeded")]
    assert ticks >= 5
    assert pool.kills == 1


def test_the_pool_inspection_matches_the_in_process_one(pool: RenderPool) -> None:
    payload = doc("{{ a }} {{ missing }} {unknown_ph}\n{{ x.__class__ }}")
    assert asyncio.run(validate_payload_with(payload, pool)) == validate_payload(payload)
    payload = doc("{{ a }} {{ missing }} {unknown_ph}")
    report = asyncio.run(validate_payload_with(payload, pool))
    assert report == validate_payload(payload)
    assert {w.kind for w in report.warnings} == {"undefined_variable", "unknown_placeholder"}
