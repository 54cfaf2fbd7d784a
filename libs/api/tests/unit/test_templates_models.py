"""The template contract enforces the service's rules: sizes, the schema check, unknown keys, preview sources."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from llmts_api.templates import (
    MAX_TAGS,
    MAX_TASKS,
    DiffQuery,
    PreviewRequest,
    TemplateCreate,
    TemplatePublic,
    TemplatesQuery,
)


def _doc(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "Quiz",
        "prompts": {"user": "Question about {{ topic }}"},
        "schema": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
    doc.update(over)
    return doc


def _error_types(exc: pytest.ExceptionInfo[ValidationError]) -> set[str]:
    return {e["type"] for e in exc.value.errors()}


def test_a_valid_document_round_trips_with_schema_under_its_public_name() -> None:
    doc = TemplateCreate.model_validate(_doc(tasks=[{"topic": "tides", "count": 2}]))
    dumped = doc.model_dump(mode="json")
    assert dumped["schema"] == {"type": "object", "properties": {"q": {"type": "string"}}}
    assert "json_schema" not in dumped
    assert TemplateCreate.model_validate(dumped) == doc


def test_tasks_beyond_the_limit_are_refused_and_the_limit_itself_is_accepted() -> None:
    TemplateCreate.model_validate(_doc(tasks=[{"count": 1}] * MAX_TASKS))
    with pytest.raises(ValidationError) as exc:
        TemplateCreate.model_validate(_doc(tasks=[{"count": 1}] * (MAX_TASKS + 1)))
    assert _error_types(exc) == {"too_long"}
    assert exc.value.errors()[0]["loc"] == ("tasks",)


def test_json_output_needs_a_schema_but_text_output_does_not() -> None:
    with pytest.raises(ValidationError, match="schema is required"):
        TemplateCreate.model_validate(_doc(schema=None))
    with pytest.raises(ValidationError, match="schema is required"):
        TemplateCreate.model_validate(_doc(schema={}))
    text = TemplateCreate.model_validate(_doc(schema=None, output={"format": "text"}))
    assert text.json_schema is None


def test_unknown_keys_are_refused_at_every_level() -> None:
    with pytest.raises(ValidationError) as exc:
        TemplateCreate.model_validate(_doc(promts={"user": "typo"}))
    assert _error_types(exc) == {"extra_forbidden"}
    with pytest.raises(ValidationError) as exc:
        TemplateCreate.model_validate(_doc(prompts={"user": "x", "assistant": "y"}))
    assert exc.value.errors()[0]["loc"] == ("prompts", "assistant")
    with pytest.raises(ValidationError):
        TemplateCreate.model_validate(_doc(model={"id": "m", "top_k": 3}))


@pytest.mark.parametrize(
    ("tags", "ok"),
    [(["a" * 50], True), (["a" * 51], False), ([""], False), (["t"] * MAX_TAGS, True), (["t"] * 33, False)],
)
def test_tags_are_bounded_in_number_and_length(tags: list[str], ok: bool) -> None:
    if ok:
        assert TemplateCreate.model_validate(_doc(tags=tags)).tags == tags
    else:
        with pytest.raises(ValidationError):
            TemplateCreate.model_validate(_doc(tags=tags))


def test_model_temperature_is_bounded() -> None:
    assert TemplateCreate.model_validate(_doc(model={"id": "m", "temperature": 2})).model is not None
    with pytest.raises(ValidationError):
        TemplateCreate.model_validate(_doc(model={"id": "m", "temperature": 2.5}))


def test_a_public_template_ignores_bookkeeping_it_does_not_know_but_still_checks_the_document() -> None:
    stamp = "2026-01-02T03:04:05+00:00"
    base = {"id": "t1", "owner_id": "u1", "version": 3, "created_at": stamp, "updated_at": stamp}
    public = TemplatePublic.model_validate({**_doc(), **base, "etag": "x"})
    assert public.version == 3
    assert "etag" not in public.model_dump()
    with pytest.raises(ValidationError):
        TemplatePublic.model_validate({**_doc(), **base, "version": 0})


def test_preview_takes_exactly_one_source_and_a_version_only_with_an_id() -> None:
    assert PreviewRequest.model_validate({"template_id": "t_1", "version": 2}).version == 2
    assert PreviewRequest.model_validate({"template": _doc()}).template is not None
    for bad in ({}, {"template_id": "t_1", "template": _doc()}, {"template": _doc(), "version": 1}):
        with pytest.raises(ValidationError):
            PreviewRequest.model_validate(bad)
    with pytest.raises(ValidationError):
        PreviewRequest.model_validate({"template_id": "../etc/passwd"})


def test_list_query_bounds_its_page_and_filters() -> None:
    assert TemplatesQuery().limit == 20
    assert TemplatesQuery.model_validate({"owner": "me", "limit": "100"}).limit == 100
    for bad in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"owner": "you"}, {"visibility": "secret"}):
        with pytest.raises(ValidationError):
            TemplatesQuery.model_validate(bad)


def test_diff_query_reads_from_under_its_wire_name() -> None:
    q = DiffQuery.model_validate({"from": "2", "to": "5"})
    assert (q.from_, q.to) == (2, 5)
    with pytest.raises(ValidationError):
        DiffQuery.model_validate({"to": 5})
    with pytest.raises(ValidationError):
        DiffQuery.model_validate({"from": 0})
