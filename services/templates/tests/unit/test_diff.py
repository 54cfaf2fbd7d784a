"""Structured diff of two template versions."""

from __future__ import annotations

from typing import Any

from llmts_templates.domain.diff import diff_documents, json_changes
from llmts_templates.domain.document import TemplateDocument


def make(**over: Any) -> TemplateDocument:
    base: dict[str, Any] = {
        "name": "T",
        "prompts": {"system": "You are helpful.", "user": "Line 1\nLine 2 {{ topic }}"},
        "schema": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
        "validation": {"mode": "custom", "rules": [{"path": "a", "max_length": 10}]},
        "variables": {"topic": "x"},
        "model": {"id": "openai/gpt-4o-mini", "temperature": 0.5},
    }
    base.update(over)
    return TemplateDocument.model_validate(base)


def test_identical_documents_have_no_changes() -> None:
    d = diff_documents(make(), make(), from_version=1, to_version=2)
    assert not d.changed
    assert not d.prompts["user"].changed
    assert not d.schema_changes
    assert not d.model
    assert not d.other


def test_prompt_schema_rules_model_changes() -> None:
    a = make()
    b = make(
        prompts={"system": "You are helpful.", "user": "Line 1\nLine 2 changed {{ topic }}"},
        schema={
            "type": "object",
            "properties": {"a": {"type": "string", "maxLength": 5}, "b": {"type": "integer"}},
            "required": ["a"],
        },
        validation={
            "mode": "custom",
            "rules": [{"path": "a", "max_length": 20}, {"path": "b", "minimum": 0}],
        },
        model={"id": "anthropic/claude-3.5-haiku", "temperature": 0.5},
    )
    d = diff_documents(a, b, from_version=1, to_version=3)
    assert d.changed
    assert not d.prompts["system"].changed
    user = d.prompts["user"]
    assert user.changed
    assert "-Line 2 {{ topic }}" in user.unified
    assert "+Line 2 changed {{ topic }}" in user.unified
    schema = {c.path: c for c in d.schema_changes}
    assert schema["schema.properties.a.maxLength"].op == "added"
    assert schema["schema.properties.b"].op == "added"
    assert d.rules.added == [{"path": "a", "max_length": 20}, {"path": "b", "minimum": 0}]
    assert d.rules.removed == [{"path": "a", "max_length": 10}]
    assert [(c.path, c.op, c.from_, c.to) for c in d.model] == [
        ("model.id", "changed", "openai/gpt-4o-mini", "anthropic/claude-3.5-haiku")
    ]


def test_rule_order_does_not_matter_and_mode_change_is_reported() -> None:
    rules = [{"path": "a", "max_length": 10}, {"path": "a", "unique": True}]
    a = make(validation={"mode": "custom", "rules": rules})
    b = make(validation={"mode": "strict", "rules": list(reversed(rules))})
    d = diff_documents(a, b, from_version=1, to_version=2)
    assert d.rules.added == []
    assert d.rules.removed == []
    assert d.rules.mode is not None
    assert d.rules.mode.to == "strict"


def test_other_fields_and_serialised_shape() -> None:
    d = diff_documents(make(), make(name="T2", tags=["x"]), from_version=1, to_version=2)
    assert {c.path for c in d.other} == {"name", "tags[0]"}
    out = d.model_dump(mode="json", by_alias=True)
    assert set(out) >= {"prompts", "schema", "rules", "model", "other", "from_version", "to_version"}
    assert out["other"][0]["from"] == "T"


def test_json_changes_arrays_and_type_changes() -> None:
    changes = json_changes({"a": [1, 2], "b": 1}, {"a": [1], "b": 1.5}, "x")
    assert [(c.path, c.op) for c in changes] == [("x.a[1]", "removed"), ("x.b", "changed")]
    assert json_changes(True, 1) != []
