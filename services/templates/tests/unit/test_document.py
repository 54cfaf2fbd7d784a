"""The template document v1: shape, unknown keys, schema required for json."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from llmts_templates.checks import validate_payload
from llmts_templates.domain.document import TemplateDocument


def doc(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "Quiz",
        "prompts": {"system": "sys", "user": "Question about {{ topic }}"},
        "schema": {"type": "object", "properties": {"q": {"type": "string"}}},
        "variables": {"topic": "history"},
    }
    base.update(over)
    return base


def test_minimal_document_gets_defaults() -> None:
    d = TemplateDocument.model_validate(doc())
    assert d.visibility == "private"
    assert d.output.format == "json"
    assert d.validation.mode == "strict"
    stored = d.stored()
    assert stored["schema"] == {"type": "object", "properties": {"q": {"type": "string"}}}
    assert "json_schema" not in stored


def test_unknown_top_level_key_is_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        TemplateDocument.model_validate(doc(promts={"user": "x"}))
    assert any(e["type"] == "extra_forbidden" and e["loc"] == ("promts",) for e in exc.value.errors())


def test_unknown_nested_key_is_refused() -> None:
    with pytest.raises(ValidationError):
        TemplateDocument.model_validate(doc(model={"id": "m", "temprature": 1}))


def test_schema_required_for_json_output() -> None:
    body = doc()
    del body["schema"]
    with pytest.raises(ValidationError, match="schema is required"):
        TemplateDocument.model_validate(body)


def test_text_output_needs_no_schema() -> None:
    body = doc(output={"format": "text"})
    del body["schema"]
    assert TemplateDocument.model_validate(body).json_schema is None


@pytest.mark.parametrize(
    "over",
    [
        {"visibility": "secret"},
        {"output": {"format": "yaml"}},
        {"validation": {"mode": "lenient"}},
        {"model": {"id": "m", "temperature": 3}},
        {"name": ""},
        {"prompts": {"system": "s"}},
    ],
)
def test_invalid_values(over: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TemplateDocument.model_validate(doc(**over))


def test_declared_names_cover_builtins_variables_and_tasks() -> None:
    d = TemplateDocument.model_validate(doc(tasks=[{"count": 2, "difficulty": "easy"}]))
    assert {"index", "date", "topic", "difficulty", "count"} <= d.declared_names()


def test_validate_reports_shape_errors_with_paths() -> None:
    body = doc(extra_key=1)
    del body["schema"]
    report = validate_payload(body)
    assert not report.valid
    paths = {e.path for e in report.errors}
    assert "extra_key" in paths


def test_validate_finds_syntax_undefined_schema_and_rule_problems() -> None:
    report = validate_payload(
        doc(
            prompts={"system": "ok", "user": "line one\n{{ topic \nthree"},
            schema={"type": "objekt"},
            validation={"mode": "custom", "rules": [{"path": "q", "min_length": "ten"}]},
        )
    )
    assert not report.valid
    syntax = [e for e in report.errors if e.path == "prompts.user"]
    assert syntax
    assert syntax[0].line is not None
    assert any(e.path.startswith("schema") for e in report.errors)
    assert any(e.path == "validation.rules[0]" for e in report.errors)


def test_undefined_variable_is_a_warning_and_rule_path_missing_is_a_warning() -> None:
    report = validate_payload(
        doc(
            prompts={"system": "", "user": "About {{ topic }} for {{ audience }}"},
            validation={"mode": "custom", "rules": [{"path": "nope", "max_length": 3}]},
        )
    )
    assert report.valid, report.errors
    messages = " ".join(w.message for w in report.warnings)
    assert "audience" in messages
    assert "nope" in messages
    assert "topic" not in messages
