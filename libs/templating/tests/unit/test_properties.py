"""Property-based tests (hypothesis)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmts_templating.parse import parse_output
from llmts_templating.render import PromptRenderer, RenderError, RenderLimits
from llmts_templating.validation import (
    UniqueState,
    canonical_json,
    compile_rules,
    content_hash,
    validate_item,
)

pytestmark = pytest.mark.unit

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)
json_containers = st.lists(json_values, max_size=5) | st.dictionaries(
    st.text(max_size=8), json_values, max_size=5
)

RENDERER = PromptRenderer(RenderLimits(max_render_seconds=2.0, cache_size=64))

template_pieces = st.sampled_from(
    [
        "{{", "}}", "{%", "%}", "{#", "#}", "{", "}", "x", " ", "\n", "for ", "in ", "if ", "endif", "endfor",
        "set ", "=", "|", "upper", "translit", "pick(index)", "tojson", "range(", ")", "(", "[", "]", "'", '"',
        "__class__", ".", "topic", "index", "items", "loop", "~", "*", "**", "9", "0", "raw", "endraw", "-",
        "macro ", "endmacro", "call", "{topic}", "{index}", "attr(", "self", "namespace(", "format",
    ]
)  # fmt: skip
templates = st.lists(template_pieces | st.text(max_size=5), max_size=40).map("".join)
contexts = st.dictionaries(
    st.sampled_from(["topic", "index", "items", "x", "loop", "name"]) | st.text(max_size=6),
    json_values,
    max_size=5,
)


def render_or_error(source: str, context: dict[str, Any]) -> str | RenderError:
    """Anything but a RenderError propagates and fails the test."""
    try:
        return RENDERER.render(source, context)
    except RenderError as err:
        return err


@given(source=templates, context=contexts)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_renderer_raises_only_render_error(source: str, context: dict[str, Any]) -> None:
    outcome = render_or_error(source, context)
    if isinstance(outcome, RenderError):
        assert outcome.kind in {"syntax", "undefined_variable", "security", "limit_exceeded", "runtime"}
        assert isinstance(outcome.message, str)
    else:
        assert isinstance(outcome, str)


@given(source=st.text(max_size=200), context=contexts)
@settings(max_examples=300, deadline=None)
def test_renderer_on_arbitrary_text(source: str, context: dict[str, Any]) -> None:
    assert isinstance(render_or_error(source, context), str | RenderError)


@given(value=json_values)
@settings(max_examples=300, deadline=None)
def test_validate_item_never_raises(value: Any) -> None:
    schema = {
        "type": "object",
        "properties": {
            "q": {"type": "string", "pattern": "^[a-z]+$", "format": "email"},
            "n": {"minimum": 0},
        },
        "additionalProperties": {"type": "array", "items": {"format": "date"}},
        "required": ["q"],
    }
    rules = compile_rules(
        [
            {"path": "q", "min_length": 1, "max_length": 5, "pattern": "^(a+)+$", "unique": True},
            {"path": "n", "minimum": 0, "maximum": 10, "enum": [1, 2, 3]},
            {"path": "list[].x", "date_format": "%Y-%m-%d", "required": True},
            {"path": "list", "min_items": 1, "max_items": 2},
            {"path": "$", "unique": True},
        ]
    )
    state = UniqueState()
    for mode in ("strict", "custom", "none"):
        report = validate_item(value, mode=mode, schema=schema, rules=rules, unique_state=state)  # type: ignore[arg-type]
        assert len(report.errors) <= 20
        assert report.valid is (report.error_count == 0)
        json.dumps(report.model_dump(mode="json"))
    state.commit(value, rules)


@given(value=json_values, data=st.data())
def test_canonical_json_is_stable_under_key_reordering(value: Any, data: st.DataObject) -> None:
    def shuffle(node: Any) -> Any:
        if isinstance(node, dict):
            keys = data.draw(st.permutations(list(node)))
            return {k: shuffle(node[k]) for k in keys}
        if isinstance(node, list):
            return [shuffle(v) for v in node]
        return node

    reordered = shuffle(value)
    assert canonical_json(reordered) == canonical_json(value)
    assert content_hash(reordered) == content_hash(value)
    assert json.loads(canonical_json(value)) == value


prose = st.text(
    alphabet=st.characters(blacklist_characters='{}[]`"\\', blacklist_categories=("Cs",)), max_size=40
)


@given(value=json_values, indent=st.sampled_from([None, 2]), lang=st.sampled_from(["json", "JSON", ""]))
def test_parse_output_round_trips_fenced_json(value: Any, indent: int | None, lang: str) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    result = parse_output(f"```{lang}\n{text}\n```", "json")
    assert result.ok, result.error
    assert result.value == value


@given(value=json_containers, before=prose, after=prose, bom=st.booleans())
def test_parse_output_round_trips_json_in_prose(value: Any, before: str, after: str, bom: bool) -> None:
    text = ("\ufeff" if bom else "") + before + json.dumps(value, ensure_ascii=False) + after
    result = parse_output(text, "json")
    assert result.ok, result.error
    assert result.value == value


@given(value=json_containers, before=prose, after=prose)
def test_parse_output_round_trips_fence_inside_prose(value: Any, before: str, after: str) -> None:
    text = f"{before}\n```json\n{json.dumps(value)}\n```\n{after}"
    result = parse_output(text, "json")
    assert result.ok, result.error
    assert result.value == value
