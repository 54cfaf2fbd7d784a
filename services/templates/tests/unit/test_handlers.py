"""Use cases against the in-memory repository: ownership, versions, rollback, events in the outbox."""

from __future__ import annotations

from typing import Any

import pytest

from llmts_common.errors import Conflict, Forbidden, NotFound, Unprocessable
from llmts_templates import handlers
from llmts_templates.domain.document import TemplateDocument
from llmts_templates.domain.ports import ListFilter
from llmts_templates.handlers import Deps


def document(**over: Any) -> TemplateDocument:
    base: dict[str, Any] = {
        "name": "Quiz",
        "category": "education",
        "tags": ["quiz"],
        "prompts": {"user": "About {{ topic }}"},
        "schema": {"type": "object"},
        "variables": {"topic": "x"},
    }
    base.update(over)
    return TemplateDocument.model_validate(base)


async def test_create_writes_version_1_and_an_event(deps: Deps, repo: Any) -> None:
    record = await handlers.create_template(document(), user_id="alice", deps=deps)
    assert record.version == 1
    assert record.owner_id == "alice"
    assert repo.events(record.id) == ["llmts.template.created"]
    assert (await repo.get_version(record.id, 1)).document == record.document
    assert deps.woken  # type: ignore[attr-defined]


async def test_private_is_404_for_others_public_is_read_only(deps: Deps) -> None:
    private = await handlers.create_template(document(), user_id="alice", deps=deps)
    public = await handlers.create_template(document(visibility="public"), user_id="alice", deps=deps)
    with pytest.raises(NotFound):
        await handlers.get_readable(private.id, user_id="bob", deps=deps)
    with pytest.raises(NotFound):
        await handlers.update_template(private.id, document(name="x"), user_id="bob", deps=deps)
    with pytest.raises(NotFound):
        await handlers.delete_template(private.id, user_id="bob", deps=deps)
    assert (await handlers.get_readable(public.id, user_id="bob", deps=deps)).id == public.id
    with pytest.raises(Forbidden):
        await handlers.update_template(public.id, document(name="x"), user_id="bob", deps=deps)
    with pytest.raises(Forbidden):
        await handlers.rollback_template(public.id, 1, user_id="bob", deps=deps)


async def test_update_versions_diff_rollback(deps: Deps, repo: Any) -> None:
    r1 = await handlers.create_template(document(), user_id="alice", deps=deps)
    r2 = await handlers.update_template(r1.id, document(name="Quiz v2"), user_id="alice", deps=deps)
    assert r2.version == 2
    assert r2.created_at == r1.created_at
    versions, total, current = await handlers.list_versions(
        r1.id, user_id="alice", limit=10, offset=0, deps=deps
    )
    assert (total, current, [v.version for v in versions]) == (2, 2, [2, 1])
    d = await handlers.diff_versions(r1.id, from_version=1, to_version=None, user_id="alice", deps=deps)
    assert [c.path for c in d.other] == ["name"]
    r3 = await handlers.rollback_template(r1.id, 1, user_id="alice", deps=deps)
    assert r3.version == 3
    assert r3.document == r1.document
    v3 = await handlers.get_version(r1.id, 3, user_id="alice", deps=deps)
    assert v3.note == "rollback to 1"
    assert (await handlers.get_version(r1.id, 2, user_id="alice", deps=deps)).document.name == "Quiz v2"
    assert repo.events(r1.id) == [
        "llmts.template.created",
        "llmts.template.updated",
        "llmts.template.updated",
    ]
    with pytest.raises(NotFound):
        await handlers.rollback_template(r1.id, 9, user_id="alice", deps=deps)


async def test_stale_expected_version_conflicts(deps: Deps) -> None:
    r1 = await handlers.create_template(document(), user_id="alice", deps=deps)
    await handlers.update_template(r1.id, document(name="b"), user_id="alice", deps=deps, expected_version=1)
    with pytest.raises(Conflict):
        await handlers.update_template(
            r1.id, document(name="c"), user_id="alice", deps=deps, expected_version=1
        )


async def test_a_lost_version_write_heals(deps: Deps, repo: Any) -> None:
    r1 = await handlers.create_template(document(), user_id="alice", deps=deps)
    del repo.versions[(r1.id, 1)]  # as if the process died between the two writes
    await handlers.update_template(r1.id, document(name="b"), user_id="alice", deps=deps)
    assert await repo.get_version(r1.id, 1) is not None


async def test_delete_tombstones_with_event(deps: Deps, repo: Any) -> None:
    r1 = await handlers.create_template(document(), user_id="alice", deps=deps)
    await handlers.delete_template(r1.id, user_id="alice", deps=deps)
    with pytest.raises(NotFound):
        await handlers.get_readable(r1.id, user_id="alice", deps=deps)
    assert repo.events(r1.id)[-1] == "llmts.template.deleted"


async def test_list_filters(deps: Deps) -> None:
    await handlers.create_template(document(name="Alpha quiz"), user_id="alice", deps=deps)
    await handlers.create_template(
        document(name="Beta", category="other", tags=["x"], visibility="public"), user_id="bob", deps=deps
    )
    await handlers.create_template(document(name="Gamma"), user_id="bob", deps=deps)
    items, total = await handlers.list_templates(ListFilter(user_id="alice"), deps=deps)
    assert total == 2
    assert {r.document.name for r in items} == {"Alpha quiz", "Beta"}
    _, total = await handlers.list_templates(ListFilter(user_id="alice", only_mine=True), deps=deps)
    assert total == 1
    items, _ = await handlers.list_templates(ListFilter(user_id="alice", tags=("x",)), deps=deps)
    assert [r.document.name for r in items] == ["Beta"]


def test_case_variants_are_counted_together_under_the_most_used_spelling() -> None:
    counts = {"Quiz": 1, "quiz": 3, "QUIZ": 1, "math": 2, "Art": 2, "b": 2}
    assert handlers.merge_case_variants(counts) == [("quiz", 5), ("Art", 2), ("b", 2), ("math", 2)]
    assert handlers.merge_case_variants({"Tag": 2, "tag": 2}) == [("Tag", 4)]  # a tie: one stable pick
    assert handlers.merge_case_variants({}) == []


async def test_facets_count_what_the_caller_may_see(deps: Deps) -> None:
    await handlers.create_template(document(tags=["Quiz", "math"]), user_id="alice", deps=deps)
    await handlers.create_template(
        document(category="Education", tags=["quiz"], visibility="public"), user_id="bob", deps=deps
    )
    await handlers.create_template(document(category="secret", tags=["hidden"]), user_id="bob", deps=deps)
    flt = ListFilter(user_id="alice")
    assert await handlers.template_facets(flt, "tags", deps=deps) == [("Quiz", 2), ("math", 1)]
    assert await handlers.template_facets(flt, "category", deps=deps) == [("Education", 2)]
    mine = ListFilter(user_id="alice", only_mine=True)
    assert await handlers.template_facets(mine, "tags", deps=deps) == [("math", 1), ("Quiz", 1)]


async def test_examples_import_and_unknown_example(deps: Deps) -> None:
    record, notes = await handlers.import_example("quiz", user_id="carol", deps=deps, visibility="public")
    assert record.owner_id == "carol"
    rows = len(record.document.tasks)
    assert rows
    assert notes[0].startswith(f"{rows} task row(s), ")
    assert record.document.visibility == "public"
    assert record.document.metadata["imported_from"] == "example:quiz"
    with pytest.raises(NotFound):
        await handlers.import_example("nope", user_id="carol", deps=deps)


async def test_llm_data_gen_import_errors_are_422(deps: Deps) -> None:
    with pytest.raises(Unprocessable) as exc:
        await handlers.import_llm_data_gen({"output": {"format": "json"}}, user_id="a", deps=deps)
    assert exc.value.details == {"path": "schema"}


@pytest.mark.parametrize(
    "validation",
    [
        {"mode": "custom", "rules": [{"path": "q", "pattern": "(a{1000}){1000}"}]},
        {"mode": "custom", "rules": [{"path": "q", "min_length": 10, "max_length": 2}]},
        {"mode": "custom", "rules": [{"path": "q", "no_such_rule": 1}]},
    ],
)
async def test_templates_whose_jobs_would_fail_at_once_are_refused(
    deps: Deps, validation: dict[str, Any]
) -> None:
    with pytest.raises(Unprocessable) as info:
        await handlers.create_template(document(validation=validation), user_id="alice", deps=deps)
    assert info.value.code == "validation_error"
    assert "validation.rules[0]" in info.value.message
    ok = await handlers.create_template(document(), user_id="alice", deps=deps)
    with pytest.raises(Unprocessable):
        await handlers.update_template(ok.id, document(validation=validation), user_id="alice", deps=deps)


async def test_an_invalid_schema_is_refused(deps: Deps) -> None:
    with pytest.raises(Unprocessable) as info:
        await handlers.create_template(document(schema={"type": "no-such-type"}), user_id="alice", deps=deps)
    assert info.value.message.startswith("schema")


async def test_making_a_template_public_does_not_expose_its_private_history(deps: Deps) -> None:
    # issue 14 finding 10: v1 private (a secret prompt), v2 public, v3 private again, v4 public
    r = await handlers.create_template(document(prompts={"user": "secret v1"}), user_id="alice", deps=deps)
    await handlers.update_template(r.id, document(visibility="public"), user_id="alice", deps=deps)
    await handlers.update_template(r.id, document(prompts={"user": "secret v3"}), user_id="alice", deps=deps)
    await handlers.update_template(r.id, document(visibility="public"), user_id="alice", deps=deps)
    for n in (1, 3):
        with pytest.raises(NotFound):
            await handlers.get_version(r.id, n, user_id="bob", deps=deps)
        with pytest.raises(NotFound):
            await handlers.diff_versions(r.id, from_version=n, to_version=4, user_id="bob", deps=deps)
    assert (await handlers.get_version(r.id, 2, user_id="bob", deps=deps)).version == 2
    diff = await handlers.diff_versions(r.id, from_version=2, to_version=None, user_id="bob", deps=deps)
    assert (diff.from_version, diff.to_version) == (2, 4)
    listed, total, current = await handlers.list_versions(r.id, user_id="bob", limit=10, offset=0, deps=deps)
    assert ([v.version for v in listed], total, current) == ([4, 2], 2, 4)
    # the owner still sees everything
    own, own_total, _ = await handlers.list_versions(r.id, user_id="alice", limit=10, offset=0, deps=deps)
    assert ([v.version for v in own], own_total) == ([4, 3, 2, 1], 4)
    assert (
        await handlers.get_version(r.id, 1, user_id="alice", deps=deps)
    ).document.prompts.user == "secret v1"
