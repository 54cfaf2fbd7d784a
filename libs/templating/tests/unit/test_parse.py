from __future__ import annotations

import pytest

from llmts_templating.parse import parse_output

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('\ufeff{"a": 1}', {"a": 1}),
        ("  \n[1, 2]\n", [1, 2]),
        ('```json\n{"a": [1, 2]}\n```', {"a": [1, 2]}),
        ('Sure! Here it is:\n```JSON\n{"a": "b"}\n```\nAnything else?', {"a": "b"}),
        ('```\n{"a": 1}\n```', {"a": 1}),
        ('Here is the item: {"q": "What is 2+2?", "a": "4"} Hope it helps!', {"q": "What is 2+2?", "a": "4"}),
        ('Note [draft]: {"a": "}"}', {"a": "}"}),
        ('The answer {is} here: {"x": {"y": [1, {"z": null}]}}.', {"x": {"y": [1, {"z": None}]}}),
        ('<think>maybe {"wrong": 1}?</think>\n{"right": 2}', {"right": 2}),
        ('"just a string"', "just a string"),
        ("42", 42),
        ('{"text": "contains ``` fence"}', {"text": "contains ``` fence"}),
    ],
)
def test_json_is_found(text: str, expected: object) -> None:
    result = parse_output(text, "json")
    assert result.ok, result.error
    assert result.value == expected
    assert result.error is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("no json here", "no JSON"),
        ('{"a": 1,}', "invalid JSON"),  # trailing comma is not repaired
        ("[1, 2,]", "invalid JSON"),
        ('{"a": {"b": 1},}', "invalid JSON"),  # and no inner fragment is returned instead
        ('{"a": {"b": 1}, "c": ', "truncated"),
        ("{'a': 1}", "invalid JSON"),
        ('{"a": NaN}', "invalid JSON"),
        ('```json\n{"a": 1,}\n```', "invalid JSON"),
    ],
)
def test_json_failures(text: str, fragment: str) -> None:
    result = parse_output(text, "json")
    assert not result.ok
    assert result.value is None
    assert result.error is not None
    assert fragment in result.error


def test_text_is_stripped() -> None:
    result = parse_output("\ufeff  Hello\nworld \n", "text")
    assert result.ok
    assert result.value == "Hello\nworld"


def test_empty_text_is_not_ok() -> None:
    result = parse_output(" \n ", "text")
    assert not result.ok
    assert result.error == "empty output"


def test_fence_with_backticks_inside_a_string() -> None:
    result = parse_output('```json\n{"code": "use ```json fences```"}\n```', "json")
    assert result.ok
    assert result.value == {"code": "use ```json fences```"}
