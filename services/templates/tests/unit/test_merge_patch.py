"""PATCH /templates/{id}: JSON merge patch (RFC 7396), then exactly what a PUT does (checks, a new version)."""

from __future__ import annotations

from typing import Any

import pytest

from llmts_common.errors import Conflict, Forbidden, Unprocessable
from llmts_templates import handlers
from llmts_templates.domain.document import TemplateDocument
from llmts_templates.domain.merge_patch import merge_patch
from llmts_templates.handlers import Deps


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [  # the examples of RFC 7396, appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_rfc_7396_examples(target: Any, patch: Any, result: Any) -> None:
    before = repr(target)
    assert merge_patch(target, patch) == result
    assert repr(target) == before  # the target is not modified


def document(**over: Any) -> TemplateDocument:
    base: dict[str, Any] = {
        "name": "Quiz",
        "category": "education",
        "tags": ["quiz"],
        "prompts": {"system": "You write quizzes.", "user": "About {{ topic }}"},
        "schema": {"type": "object"},
        "variables": {"topic": "x"},
        "model": {"id": "openai/gpt-4o-mini", "temperature": 0.7},
    }
    base.update(over)
    return TemplateDocument.model_validate(base)


async def test_patch_merges_and_makes_a_new_version(deps: Deps, repo: Any) -> None:
    t = await handlers.create_template(document(), user_id="alice", deps=deps)
    patch = {"name": "Quiz v2", "model": {"temperature": 0.2}, "category": None, "tags": ["a", "b"]}
    r = await handlers.patch_template(t.id, patch, user_id="alice", deps=deps)
    assert r.version == 2
    d = r.document
    assert (d.name, d.category, d.tags) == ("Quiz v2", None, ["a", "b"])
    assert d.model is not None
    assert (d.model.id, d.model.temperature) == ("openai/gpt-4o-mini", 0.2)
    assert d.prompts.system == "You write quizzes."  # untouched keys stay
    assert repo.events(t.id) == ["llmts.template.created", "llmts.template.updated"]
    assert (await repo.get_version(t.id, 1)).document.name == "Quiz"


async def test_patch_has_the_checks_of_put(deps: Deps) -> None:
    t = await handlers.create_template(document(), user_id="alice", deps=deps)
    with pytest.raises(Unprocessable) as info:
        await handlers.patch_template(t.id, {"prompts": {"user": "{% for %}"}}, user_id="alice", deps=deps)
    assert info.value.details[0]["loc"] == ["body", "prompts", "user"]
    with pytest.raises(Unprocessable) as info:
        await handlers.patch_template(t.id, {"schema": None}, user_id="alice", deps=deps)  # json needs one
    assert info.value.code == "validation_error"
    assert info.value.details[0]["path"] == "schema"
    with pytest.raises(Unprocessable) as info:
        await handlers.patch_template(t.id, {"promts": {}}, user_id="alice", deps=deps)
    assert info.value.details[0]["loc"] == ["body", "promts"]
    with pytest.raises(Unprocessable):
        await handlers.patch_template(t.id, ["not", "an", "object"], user_id="alice", deps=deps)
    with pytest.raises(Conflict):
        await handlers.patch_template(t.id, {"name": "x"}, user_id="alice", deps=deps, expected_version=7)
    public = await handlers.create_template(document(visibility="public"), user_id="alice", deps=deps)
    with pytest.raises(Forbidden):
        await handlers.patch_template(public.id, {"name": "x"}, user_id="bob", deps=deps)
    assert (await handlers.get_readable(t.id, user_id="alice", deps=deps)).version == 1
