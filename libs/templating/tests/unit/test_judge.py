"""The LLM judge's rules: spec checks, the answer schema, verdict reading, the sandboxed accept expression."""

from __future__ import annotations

import json

import jsonschema
import pytest

from llmts_templating.judge import JudgeError, JudgeRules

SCORES = {"helpfulness": [1, 5], "accuracy": [1, 5]}


def _rules(accept: str = "helpfulness >= 4 and accuracy >= 4") -> JudgeRules:
    return JudgeRules.build("Helpful and factually right answers score high.", SCORES, accept)


def test_verdicts_are_read_and_decided() -> None:
    rules = _rules()
    good = rules.read(json.dumps({"scores": {"helpfulness": 5, "accuracy": 4}, "reason": "solid"}))
    assert good.accepted
    assert good.scores == {"helpfulness": 5.0, "accuracy": 4.0}
    assert good.reason == "solid"
    assert not rules.read('{"scores": {"helpfulness": 5, "accuracy": 3.5}, "reason": ""}').accepted
    fenced = rules.read('```json\n{"scores": {"helpfulness": 4, "accuracy": 4}, "reason": "ok"}\n```')
    assert fenced.accepted


@pytest.mark.parametrize(
    ("answer", "path"),
    [
        ("not json", "verdict"),
        ('{"reason": "no scores"}', "verdict.scores"),
        ('{"scores": {"helpfulness": 5}, "reason": ""}', "verdict.scores.accuracy"),
        ('{"scores": {"helpfulness": 6, "accuracy": 4}, "reason": ""}', "verdict.scores.helpfulness"),
        ('{"scores": {"helpfulness": true, "accuracy": 4}, "reason": ""}', "verdict.scores.helpfulness"),
    ],
)
def test_unreadable_or_out_of_range_verdicts_are_errors(answer: str, path: str) -> None:
    with pytest.raises(JudgeError) as err:
        _rules().read(answer)
    assert err.value.path == path


def test_the_answer_schema_matches_what_read_accepts() -> None:
    rules = _rules()
    schema = rules.schema()
    jsonschema.validate({"scores": {"helpfulness": 3, "accuracy": 5}, "reason": "x"}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"scores": {"helpfulness": 9, "accuracy": 5}, "reason": "x"}, schema)


def test_messages_carry_rubric_ranges_item_and_inputs() -> None:
    system, user = _rules().messages({"answer": "Волга"}, {"question": "Самая длинная река Европы?"})
    assert "Helpful and factually right" in system["content"]
    assert "helpfulness from 1 to 5" in system["content"]
    assert "Волга" in user["content"]
    assert "Самая длинная" in user["content"]


@pytest.mark.parametrize(
    ("scores", "accept", "path"),
    [
        ({}, "x > 1", "judge.scores"),
        ({"q": [5, 1]}, "q > 1", "judge.scores.q"),
        ({"bad name": [1, 5]}, "1", "judge.scores.bad name"),
        ({"q": [1, 5]}, "", "judge.accept"),
        ({"q": [1, 5]}, "q >= 4 and clarity >= 3", "judge.accept"),
        ({"q": [1, 5]}, "q >=", "judge.accept"),
        ({"q": [1, 5]}, "q }} {{ q", "judge.accept"),
        ({"q": [1, 5]}, "q.__class__.__mro__", "judge.accept"),
    ],
)
def test_bad_specs_are_refused_before_any_job(scores: dict[str, list[int]], accept: str, path: str) -> None:
    with pytest.raises(JudgeError) as err:
        JudgeRules.build("rubric", scores, accept)
    assert err.value.path == path


def test_accept_may_use_arithmetic_and_functions_of_the_sandbox() -> None:
    rules = JudgeRules.build("r", {"a": [0, 10], "b": [0, 10]}, "(a + b) / 2 >= 7 or [a, b] | min >= 9")
    assert rules.decide({"a": 6, "b": 8})
    assert not rules.decide({"a": 6, "b": 7})
    assert rules.decide({"a": 9, "b": 9})
