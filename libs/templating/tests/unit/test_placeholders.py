"""Placeholder outputs from a JSON Schema (what the preview renders later stages and the judge with)."""

from __future__ import annotations

from llmts_templating.placeholders import schema_example, stage_placeholders


def test_examples_const_default_and_enum_win() -> None:
    assert schema_example({"type": "string", "examples": ["A kettle"]}) == "A kettle"
    assert schema_example({"const": 3}) == 3
    assert schema_example({"type": "integer", "default": 7}) == 7
    assert schema_example({"enum": ["A", "B"]}) == "A"


def test_by_type_with_property_names() -> None:
    schema = {
        "type": "object",
        "properties": {
            "question": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "score": {"type": "number", "minimum": 1},
            "ok": {"type": "boolean"},
            "note": {"type": ["null", "string"]},
            "pick": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        },
    }
    assert schema_example(schema) == {
        "question": "<question>",
        "tags": ["<tags>"],
        "score": 1,
        "ok": False,
        "note": "<note>",
        "pick": 0,
    }


def test_deep_or_odd_schemas_end_in_a_placeholder() -> None:
    deep: dict[str, object] = {"type": "string"}
    for _ in range(20):
        deep = {"type": "object", "properties": {"x": deep}}
    out = schema_example(deep)
    for _ in range(9):
        assert isinstance(out, dict)
        out = out["x"]
    assert out == "<x>"
    assert schema_example(True) == "<value>"


def test_stage_placeholders_name_main_and_every_stage() -> None:
    main = {"type": "object", "properties": {"title": {"type": "string"}}}
    faq = {"type": "object", "properties": {"faq": {"type": "array", "items": {"type": "string"}}}}
    assert stage_placeholders(main, "json", [("faq", faq)]) == {
        "main": {"title": "<title>"},
        "faq": {"faq": ["<faq>"]},
    }
    assert stage_placeholders(None, "text", []) == {"main": "<text>"}
