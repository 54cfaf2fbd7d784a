"""RenderPool: renders off the caller's event loop; a render past its deadline is refused and, with process
isolation, its worker is killed and replaced (issue 14 finding 1)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import pytest

from llmts_templating.pool import RenderPool
from llmts_templating.render import RenderError, RenderLimits

pytestmark = pytest.mark.unit

# a comparison of two 1 Mi-item lists per statement: no filter, no loop, no call; only a hard deadline stops it
# once the cooperative checks are bypassed (max_render_seconds is huge inside the worker, see below)
STALL = "{% set x = [1] * 1000000 %}" + "{% set y = x == x %}" * 2000


@pytest.fixture(scope="module")
def pool() -> Iterator[RenderPool]:
    p = RenderPool(RenderLimits(max_render_seconds=0.5), workers=2)
    yield p
    p.close()


def test_renders_like_the_renderer(pool: RenderPool) -> None:
    async def go() -> tuple[str, str, str]:
        prompts = await pool.render_prompts("sys {{ a }}", "user {{ b|tojson }}", {"a": 1, "b": ["x"]})
        return prompts.system, prompts.user, await pool.render("{{ a + 1 }}", {"a": 1})

    assert asyncio.run(go()) == ("sys 1", 'user ["x"]', "2")


def test_render_errors_cross_the_process_boundary(pool: RenderPool) -> None:
    with pytest.raises(RenderError) as info:
        asyncio.run(pool.render("line\n{{ missing }}", {}))
    assert (info.value.kind, info.value.variable, info.value.line) == ("undefined_variable", "missing", 2)


def test_a_render_past_the_hard_deadline_is_killed_and_the_worker_replaced() -> None:
    # the worker's own deadline is a minute, so only the pool's kill can refuse it at 0.2 + 0.1 s
    pool = RenderPool(RenderLimits(max_render_seconds=60), workers=1, grace_seconds=0.1)
    pool.timeout = 0.3
    try:
        with pytest.raises(RenderError) as info:
            asyncio.run(pool.render(STALL, {}))
        assert (info.value.kind, info.value.limit) == ("limit_exceeded", "max_render_seconds")
        assert pool.kills == 1
        assert asyncio.run(pool.render("still {{ a }}", {"a": "here"})) == "still here"
    finally:
        pool.close()


def test_the_event_loop_runs_while_a_render_is_in_flight(pool: RenderPool) -> None:
    async def go() -> tuple[int, str]:
        ticks = 0
        render = asyncio.create_task(
            pool.render("{% set x = [1] * 1000000 %}" + "{% set y = x|sort %}" * 200, {})
        )
        while not render.done():
            ticks += 1
            await asyncio.sleep(0.01)
        try:
            await render
        except RenderError as err:
            return ticks, err.limit or ""
        return ticks, "rendered"

    ticks, outcome = asyncio.run(go())
    assert outcome == "max_render_seconds"
    assert ticks >= 5  # the loop kept turning during the render (it never ran on the loop's thread)


def test_thread_isolation_renders_and_refuses() -> None:
    pool = RenderPool(RenderLimits(max_render_seconds=0.05), workers=1, isolation="thread")
    try:
        assert asyncio.run(pool.render("{{ 'ok' }}", {})) == "ok"
        with pytest.raises(RenderError) as info:
            asyncio.run(pool.render("{% set x = [1] * 300000 %}" + "{% set y = x|tojson %}" * 200, {}))
        assert info.value.limit == "max_render_seconds"
    finally:
        pool.close()


def test_a_closed_pool_refuses() -> None:
    pool = RenderPool(workers=1)
    pool.close()
    with pytest.raises(RuntimeError):
        asyncio.run(pool.render("x", {}))


def test_inspect_reports_issues_and_names(pool: RenderPool) -> None:
    ok = asyncio.run(pool.inspect("{{ topic }} {name} {% set own = 1 %}{{ own }}", path="prompts.user"))
    assert (ok.issues, ok.variables, ok.placeholders) == ([], {"topic"}, {"name"})
    bad = asyncio.run(pool.inspect("line\n{{ x.__class__ }}", path="prompts.user"))
    assert [(i.kind, i.line, i.path) for i in bad.issues] == [("security", 2, "prompts.user")]


def test_inspect_of_a_template_that_compiles_for_too_long_is_an_issue() -> None:
    pool = RenderPool(RenderLimits(max_render_seconds=0.2), workers=1, grace_seconds=0.1)
    try:
        slow = asyncio.run(
            pool.inspect(STALL, path="prompts.user")
        )  # compiling 2000 statements takes seconds
        assert [(i.kind, i.path) for i in slow.issues] == [("limit_exceeded", "prompts.user")]
        assert pool.kills == 1
    finally:
        pool.close()


def test_an_empty_system_prompt_renders(pool: RenderPool) -> None:
    prompts = asyncio.run(pool.render_prompts("", "u {{ a }}", {"a": 1}))
    assert (prompts.system, prompts.user) == ("", "u 1")


def test_a_worker_killed_from_outside_is_replaced_and_the_render_asked_again() -> None:
    # a signal to the service's process group (Ctrl-C, a SIGTERM to the group at shutdown) never reaches the
    # workers (their own session); one that dies anyway under a render is replaced and the render retried
    pool = RenderPool(RenderLimits(max_render_seconds=5), workers=1)
    try:
        assert asyncio.run(pool.render("{{ a }}", {"a": 1})) == "1"
        worker = pool._workers[0]
        proc = worker._proc
        assert proc is not None
        assert os.getsid(proc.pid) != os.getsid(0)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
        assert asyncio.run(pool.render("again {{ a }}", {"a": 2})) == "again 2"
        assert pool.kills == 0
    finally:
        pool.close()
