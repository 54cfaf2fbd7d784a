"""Issue 19 finding 1: a template whose prompts do not compile is refused on create, update and imports (422
``validation_error`` with the issue's path, line and column) instead of being saved and failing every job."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from llmts_common.errors import Unprocessable
from llmts_templates import handlers
from llmts_templates.domain.document import TemplateDocument
from llmts_templates.handlers import Deps
from llmts_templating.pool import Inspection, RenderPool
from llmts_templating.render import RenderLimits, TemplateIssue

BROKEN = "Hello {{ product \n {% for %}"
SLOW_TO_COMPILE = "{% set x = [1] * 10 %}" + "{% set y = x == x %}" * 2000


def document(user: str = "About {{ topic }}", system: str = "") -> TemplateDocument:
    return TemplateDocument.model_validate(
        {
            "name": "Quiz",
            "prompts": {"system": system, "user": user},
            "schema": {"type": "object"},
            "variables": {"topic": "x"},
        }
    )


@pytest.fixture(scope="module")
def pool() -> Iterator[RenderPool]:
    p = RenderPool(RenderLimits(max_render_seconds=0.3), workers=1, grace_seconds=0.1)
    yield p
    p.close()


def _details(info: pytest.ExceptionInfo[Unprocessable]) -> list[dict[str, Any]]:
    assert info.value.code == "validation_error"
    details = info.value.details
    assert isinstance(details, list)
    return details


async def test_create_refuses_a_prompt_that_does_not_compile(deps: Deps, repo: Any) -> None:
    with pytest.raises(Unprocessable) as info:
        await handlers.create_template(document(BROKEN), user_id="alice", deps=deps)
    [issue] = _details(info)
    assert issue["path"] == "prompts.user"
    assert issue["type"] == "syntax"
    assert issue["loc"] == ["body", "prompts", "user"]
    assert (issue["line"], issue["column"]) == (2, 2)
    assert info.value.message.startswith("prompts.user: ")
    assert repo.templates == {}


async def test_update_refuses_it_too_and_keeps_the_current_version(deps: Deps) -> None:
    ok = await handlers.create_template(document(), user_id="alice", deps=deps)
    with pytest.raises(Unprocessable) as info:
        await handlers.update_template(ok.id, document(system="{% if %}"), user_id="alice", deps=deps)
    [issue] = _details(info)
    assert (issue["path"], issue["line"]) == ("prompts.system", 1)
    assert (await handlers.get_readable(ok.id, user_id="alice", deps=deps)).version == 1


async def test_undefined_variables_stay_warnings(deps: Deps) -> None:
    record = await handlers.create_template(document("About {{ nowhere }}"), user_id="alice", deps=deps)
    assert record.version == 1


class RefusingInspector:
    """Reports every prompt as not compiling: shows which paths consult the inspector."""

    def __init__(self) -> None:
        self.seen: list[str | None] = []

    async def inspect(self, source: str, *, path: str | None = None) -> Inspection:
        self.seen.append(path)
        return Inspection([TemplateIssue(path=path, message="no", line=1, column=3, kind="syntax")])


async def test_imports_are_checked_through_the_inspector(deps: Deps, repo: Any) -> None:
    refusing = RefusingInspector()
    checked = dataclasses.replace(deps, inspector=refusing)
    config = {"meta": {"name": "ldg"}, "output": {"format": "text"}, "prompts": {"userPrompt": "{{ x }}"}}
    with pytest.raises(Unprocessable) as info:
        await handlers.import_llm_data_gen(config, user_id="alice", deps=checked)
    assert [(d["path"], d["column"]) for d in _details(info)] == [("prompts.system", 3), ("prompts.user", 3)]
    with pytest.raises(Unprocessable):
        await handlers.import_example("quiz", user_id="alice", deps=checked)
    assert refusing.seen == ["prompts.system", "prompts.user"] * 2
    assert repo.templates == {}
    # jinja delimiters in imported literal text are escaped, so they import fine
    config["prompts"] = {"userPrompt": "Write {% for %} about {topic}"}
    record, _ = await handlers.import_llm_data_gen(config, user_id="alice", deps=deps)
    assert record.version == 1


def test_through_the_render_pool_under_its_deadline(deps: Deps, pool: RenderPool) -> None:
    pooled = dataclasses.replace(deps, inspector=pool)

    async def go() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        with pytest.raises(Unprocessable) as broken:
            await handlers.create_template(document(BROKEN), user_id="alice", deps=pooled)
        with pytest.raises(Unprocessable) as slow:
            await handlers.create_template(document(SLOW_TO_COMPILE), user_id="alice", deps=pooled)
        return _details(broken), _details(slow)

    broken, slow = asyncio.run(go())
    assert (broken[0]["line"], broken[0]["column"]) == (2, 2)
    assert slow[0]["path"] == "prompts.user"
    assert slow[0]["type"] == "limit_exceeded"
