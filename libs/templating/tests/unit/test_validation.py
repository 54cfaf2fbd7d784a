from __future__ import annotations

import time
from typing import Any

import pytest

from llmts_templating.patterns import DEFAULT_TIMEOUT_S, PatternError, PatternTimeoutError, compile_pattern
from llmts_templating.validation import (
    CompiledRules,
    Rule,
    RuleError,
    SchemaError,
    UniqueState,
    canonical_json,
    check_rules,
    check_schema,
    compile_rules,
    compile_schema,
    content_hash,
    parse_path,
    rule_paths_missing_from_schema,
    validate_item,
    validate_output,
)

pytestmark = pytest.mark.unit

TIMED_OUT = "pattern check timed out; treat as not matching"

QUIZ_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["question", "options", "answer"],
    "additionalProperties": False,
    "properties": {
        "question": {"type": "string", "minLength": 10},
        "options": {
            "type": "array",
            "minItems": 4,
            "maxItems": 4,
            "items": {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}},
        },
        "answer": {"type": "string", "pattern": "^[A-D]$"},
        "published": {"type": "string", "format": "date"},
        "author_email": {"type": "string", "format": "email"},
        "id": {"type": "string", "format": "uuid"},
        "source": {"type": "string", "format": "uri"},
        "created": {"type": "string", "format": "date-time"},
        "ip": {"type": "string", "format": "ipv4"},
        "meta": {"type": "object", "properties": {"author": {"type": "string"}}},
    },
}

GOOD_QUIZ: dict[str, Any] = {
    "question": "Which year did the Western Roman Empire fall?",
    "options": [{"text": "476"}, {"text": "1453"}, {"text": "800"}, {"text": "1066"}],
    "answer": "A",
    "published": "2026-03-22",
    "author_email": "teacher@example.com",
    "id": "123e4567-e89b-12d3-a456-426614174000",
    "source": "https://example.com/rome",
    "created": "2026-03-22T10:00:00Z",
    "ip": "192.168.0.1",
    "meta": {"author": "me"},
}

ISSUE_RULES: list[dict[str, Any]] = [
    {"path": "question", "min_length": 10, "max_length": 300},
    {"path": "answer", "pattern": "^[A-D]$"},
    {"path": "published", "date_format": "%Y-%m-%d"},
    {"path": "options", "min_items": 4, "max_items": 4},
    {"path": "options[].text", "max_length": 80},
    {"path": "question", "unique": True},
]


def paths(report: Any) -> list[tuple[str, str]]:
    return [(e.path, e.rule) for e in report.errors]


class TestStrict:
    def test_valid_item(self) -> None:
        report = validate_item(GOOD_QUIZ, mode="strict", schema=QUIZ_SCHEMA)
        assert report.valid
        assert report.errors == []

    @pytest.mark.parametrize(
        ("field", "bad"),
        [
            ("published", "22/03/2026"),
            ("author_email", "not an email"),
            ("id", "not-a-uuid"),
            ("source", "not a uri"),
            ("created", "2026-03-22 10:00"),
            ("ip", "999.1.1.1"),
        ],
    )
    def test_formats_are_asserted(self, field: str, bad: str) -> None:
        report = validate_item({**GOOD_QUIZ, field: bad}, mode="strict", schema=QUIZ_SCHEMA)
        assert paths(report) == [(f"$.{field}", "format")]
        assert report.errors[0].value_excerpt == bad

    def test_errors_carry_json_paths(self) -> None:
        item = {**GOOD_QUIZ, "options": [{"text": "a"}, {"text": "b"}, {"text": 3}, {}], "answer": "E"}
        report = validate_item(item, mode="strict", schema=QUIZ_SCHEMA)
        assert not report.valid
        assert set(paths(report)) == {
            ("$.options[2].text", "type"),
            ("$.options[3]", "required"),
            ("$.answer", "pattern"),
        }

    def test_additional_and_required(self) -> None:
        item = {k: v for k, v in GOOD_QUIZ.items() if k != "answer"} | {"extra": 1}
        report = validate_item(item, mode="strict", schema=QUIZ_SCHEMA)
        assert {r for _, r in paths(report)} == {"required", "additionalProperties"}

    def test_draft_07_schema(self) -> None:
        schema = {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {
                "n": {"type": "integer", "exclusiveMinimum": 0},
                "d": {"type": "string", "format": "date"},
            },
            "items": [{"type": "string"}],
        }
        assert check_schema(schema) == []
        assert compile_schema(schema).draft == "Draft7"
        assert validate_item({"n": 1, "d": "2026-01-01"}, mode="strict", schema=schema).valid
        assert set(paths(validate_item({"n": 0, "d": "x"}, mode="strict", schema=schema))) == {
            ("$.n", "exclusiveMinimum"),
            ("$.d", "format"),
        }

    def test_rules_also_apply_in_strict_mode(self) -> None:
        rules = compile_rules([{"path": "question", "max_length": 20}])
        report = validate_item(GOOD_QUIZ, mode="strict", schema=QUIZ_SCHEMA, rules=rules)
        assert paths(report) == [("$.question", "max_length")]

    def test_strict_json_needs_a_schema(self) -> None:
        with pytest.raises(ValueError, match="schema"):
            validate_item({}, mode="strict")

    def test_schema_pattern_redos_is_bounded(self) -> None:
        # bounded by the engine: RE2 matches in linear time, so ^(a+)+$ cannot backtrack
        schema = {"type": "string", "pattern": "^(a+)+$"}
        assert compile_pattern("^(a+)+$").engine == "re2"
        start = time.monotonic()
        report = validate_item("a" * 50 + "b", mode="strict", schema=schema)
        print(f"schema pattern ^(a+)+$ on 51 chars: {(time.monotonic() - start) * 1000:.1f} ms")
        assert paths(report) == [("$", "pattern")]

    def test_schema_pattern_properties_are_bounded(self) -> None:
        schema = {
            "type": "object",
            "patternProperties": {"^(a+)+$": {"type": "integer"}},
            "additionalProperties": False,
        }
        assert compile_pattern("^(a+)+$").engine == "re2"  # linear: the keys cannot make it backtrack
        start = time.monotonic()
        report = validate_item({"a" * 40 + "b": 1, "aaa": "x"}, mode="strict", schema=schema)
        print(f"patternProperties ^(a+)+$: {(time.monotonic() - start) * 1000:.1f} ms")
        assert {r for _, r in paths(report)} == {"type", "additionalProperties"}

    def test_unresolvable_ref_is_reported_not_raised(self) -> None:
        report = validate_item({"a": 1}, mode="strict", schema={"$ref": "https://example.com/nope.json"})
        assert not report.valid
        assert report.errors[0].rule == "schema"

    def test_text_strict_means_non_empty(self) -> None:
        assert validate_item("hello", mode="strict", output_format="text").valid
        report = validate_item("  ", mode="strict", output_format="text")
        assert paths(report) == [("$", "non_empty")]


class TestCheckSchema:
    def test_valid(self) -> None:
        assert check_schema(QUIZ_SCHEMA) == []

    def test_metaschema_errors_have_paths(self) -> None:
        issues = check_schema({"type": "objekt", "properties": {"a": {"minLength": -1}}})
        assert {i.path for i in issues} == {"$.type", "$.properties.a.minLength"}

    def test_unknown_schema_dialect(self) -> None:
        issues = check_schema({"$schema": "https://example.com/my-dialect"})
        assert issues[0].path == "$.$schema"

    def test_bad_patterns(self) -> None:
        issues = check_schema(
            {"properties": {"a": {"pattern": "([a-z]"}, "b": {"pattern": "(x{1000}){1000}"}}}
        )
        assert [i.path for i in issues] == ["$.properties.a.pattern", "$.properties.b.pattern"]

    def test_not_an_object(self) -> None:
        assert check_schema([1])[0].path == "$"

    def test_compile_schema_raises(self) -> None:
        with pytest.raises(SchemaError) as info:
            compile_schema({"type": 5})
        assert info.value.issues


class TestRules:
    def test_issue_rules_on_good_item(self) -> None:
        report = validate_item(GOOD_QUIZ, mode="custom", rules=compile_rules(ISSUE_RULES))
        assert report.valid

    @pytest.mark.parametrize(
        ("rule", "value", "expected"),
        [
            ({"path": "q", "min_length": 5}, {"q": "abc"}, [("$.q", "min_length")]),
            ({"path": "q", "max_length": 2}, {"q": "abc"}, [("$.q", "max_length")]),
            ({"path": "q", "max_length": 3}, {"q": "абв"}, []),
            ({"path": "q", "pattern": "^[A-D]$"}, {"q": "E"}, [("$.q", "pattern")]),
            ({"path": "q", "pattern": "^[А-Яа-я ]+$"}, {"q": "Привет мир"}, []),
            ({"path": "q", "date_format": "%Y-%m-%d"}, {"q": "2026-13-01"}, [("$.q", "date_format")]),
            ({"path": "q", "date_format": "%d.%m.%Y"}, {"q": "22.03.2026"}, []),
            ({"path": "q", "enum": ["a", "b"]}, {"q": "c"}, [("$.q", "enum")]),
            ({"path": "q", "enum": [1, 2]}, {"q": True}, [("$.q", "enum")]),
            ({"path": "q", "enum": [1, 2]}, {"q": 2}, []),
            ({"path": "q", "minimum": 1}, {"q": 0}, [("$.q", "minimum")]),
            ({"path": "q", "maximum": 1.5}, {"q": 2}, [("$.q", "maximum")]),
            ({"path": "q", "minimum": 0, "maximum": 10}, {"q": 5.5}, []),
            ({"path": "q", "minimum": 0}, {"q": "5"}, [("$.q", "minimum")]),
            ({"path": "q", "min_items": 2}, {"q": [1]}, [("$.q", "min_items")]),
            ({"path": "q", "max_items": 1}, {"q": [1, 2]}, [("$.q", "max_items")]),
            ({"path": "q", "max_items": 1}, {"q": "x"}, [("$.q", "max_items")]),
            ({"path": "q", "required": True}, {}, [("$.q", "required")]),
            ({"path": "q", "required": True}, {"q": None}, [("$.q", "required")]),
            ({"path": "q", "max_length": 1}, {}, []),
            ({"path": "q", "max_length": 1}, {"q": None}, []),
            ({"path": "q", "max_length": 1}, {"q": 12}, [("$.q", "max_length")]),
            ({"path": "meta.author", "required": True}, {"meta": {}}, [("$.meta.author", "required")]),
            ({"path": "meta.author", "required": True}, {}, [("$.meta.author", "required")]),
            (
                {"path": "meta.author", "min_length": 3},
                {"meta": {"author": "ab"}},
                [("$.meta.author", "min_length")],
            ),
            ({"path": "$", "min_length": 3}, "ab", [("$", "min_length")]),
            ({"path": "list[1]", "maximum": 5}, {"list": [1, 9]}, [("$.list[1]", "maximum")]),
            ({"path": "[].n", "maximum": 5}, [{"n": 1}, {"n": 7}], [("$[1].n", "maximum")]),
            ({"path": "odd key", "maximum": 5}, {"odd key": 7}, [('$["odd key"]', "maximum")]),
        ],
    )
    def test_each_rule(self, rule: dict[str, Any], value: Any, expected: list[tuple[str, str]]) -> None:
        report = validate_item(value, mode="custom", rules=compile_rules([rule]))
        assert paths(report) == expected
        assert report.valid is (not expected)

    def test_options_text_applies_to_every_element(self) -> None:
        rules = compile_rules([{"path": "options[].text", "max_length": 5, "required": True}])
        item = {"options": [{"text": "short"}, {"text": "far too long"}, {}, {"text": "ok"}]}
        report = validate_item(item, mode="custom", rules=rules)
        assert paths(report) == [("$.options[1].text", "max_length"), ("$.options[2].text", "required")]
        assert report.errors[0].value_excerpt == "far too long"

    def test_custom_mode_ignores_the_schema(self) -> None:
        report = validate_item({"anything": 1}, mode="custom", schema=QUIZ_SCHEMA, rules=compile_rules([]))
        assert report.valid

    def test_none_mode(self) -> None:
        assert validate_item(
            {"x": "y"}, mode="none", rules=compile_rules([{"path": "x", "max_length": 0}])
        ).valid

    def test_rule_model_accepts_objects(self) -> None:
        rules = compile_rules([Rule(path="q", max_length=3)])
        assert isinstance(rules, CompiledRules)
        assert len(rules) == 1

    def test_rules_can_be_passed_uncompiled(self) -> None:
        assert not validate_item({"q": "abcd"}, mode="custom", rules=[{"path": "q", "max_length": 3}]).valid


class TestMalformedRules:
    @pytest.mark.parametrize(
        ("rule", "fragment"),
        [
            ({"path": "q", "max_lenght": 3}, "unknown key 'max_lenght'"),
            (
                {"path": "q", "min_length": 5, "max_length": 3},
                "min_length (5) is greater than max_length (3)",
            ),
            ({"path": "q", "minimum": 5, "maximum": 3}, "minimum"),
            ({"path": "q", "min_items": 5, "max_items": 3}, "min_items"),
            ({"path": "q", "pattern": "([a-z]"}, "invalid regular expression"),
            ({"path": "q", "pattern": "(a{1000}){1000}"}, "unsafe"),
            ({"path": "q", "pattern": "a" * 3000}, "longer than"),
            ({"path": "q", "date_format": "YYYY-MM-DD"}, "% directive"),
            ({"path": "q", "date_format": "%Q"}, "invalid date_format"),
            ({"path": "q"}, "no constraint"),
            ({"path": "a..b", "required": True}, "empty segment"),
            ({"path": "a[x]", "required": True}, "invalid path segment"),
            ({"path": "q", "min_length": -1}, "min_length"),
            ({"path": "q", "enum": []}, "enum"),
            ({"max_length": 3}, "path"),
        ],
    )
    def test_malformed_rule(self, rule: dict[str, Any], fragment: str) -> None:
        good = {"path": "ok", "required": True}
        with pytest.raises(RuleError) as info:
            compile_rules([good, rule])
        assert info.value.index == 1
        assert fragment in info.value.reason
        assert "rule 1" in str(info.value)

    def test_all_problems_are_listed(self) -> None:
        problems = check_rules(
            [{"path": "a", "max_lenght": 1}, {"path": "b", "required": True}, {"path": "c"}]
        )
        assert [p.index for p in problems] == [0, 2]

    def test_not_an_object(self) -> None:
        with pytest.raises(RuleError):
            compile_rules(["path"])

    def test_text_output_rules(self) -> None:
        compile_rules(
            [{"path": "$", "min_length": 10, "max_length": 100, "pattern": "^#"}], output_format="text"
        )
        with pytest.raises(RuleError, match="text output has no fields"):
            compile_rules([{"path": "title", "max_length": 3}], output_format="text")
        with pytest.raises(RuleError, match="do not apply to text"):
            compile_rules([{"path": ".", "min_items": 3}], output_format="text")

    def test_text_rules_validate(self) -> None:
        rules = compile_rules([{"path": ".", "min_length": 5, "pattern": "^# "}], output_format="text")
        assert validate_item("# Title\nbody", mode="custom", rules=rules, output_format="text").valid
        report = validate_item("body", mode="custom", rules=rules, output_format="text")
        assert paths(report) == [("$", "min_length"), ("$", "pattern")]


class TestPatterns:
    def test_redos_pattern_is_linear(self) -> None:
        rules = compile_rules([{"path": "q", "pattern": "^(a+)+$"}])
        start = time.monotonic()
        report = validate_item({"q": "a" * 50 + "b"}, mode="custom", rules=rules)
        print(f"rule pattern ^(a+)+$ on 51 chars: {(time.monotonic() - start) * 1000:.1f} ms")
        assert paths(report) == [("$.q", "pattern")]
        assert report.errors[0].message != TIMED_OUT  # RE2 answered: no timeout was needed
        assert compile_pattern("^(a+)+$").engine == "re2"

    def test_lookaround_falls_back_with_timeout(self) -> None:
        pattern = compile_pattern(r"^(?=.*\d)(?=.*[a-z]).{8,}$")
        assert pattern.engine == "regex"
        assert pattern.search("abcdefg1")
        assert not pattern.search("abcdefgh")

    def test_backtracking_fallback_is_bounded(self) -> None:
        # RE2 has no lookahead, so this runs on the backtracking engine: the match timeout is what stops it
        pattern = compile_pattern(r"^(?=x)?(a|aa)+$")
        assert (pattern.engine, pattern.timeout) == ("regex", DEFAULT_TIMEOUT_S)
        with pytest.raises(PatternTimeoutError, match="took longer than"):
            pattern.search("a" * 60 + "b")
        rules = compile_rules([{"path": "q", "pattern": r"^(?=x)?(a|aa)+$"}])
        start = time.monotonic()
        report = validate_item({"q": "a" * 60 + "b"}, mode="custom", rules=rules)
        print(f"fallback pattern on 61 chars: {(time.monotonic() - start) * 1000:.1f} ms")
        assert [(e.path, e.rule, e.message) for e in report.errors] == [("$.q", "pattern", TIMED_OUT)]

    def test_backreference_falls_back(self) -> None:
        assert compile_pattern(r"^(\w)\1$").search("aa")

    def test_invalid(self) -> None:
        with pytest.raises(PatternError) as info:
            compile_pattern("(")
        assert info.value.reason == "invalid"


class TestUnique:
    RULES = compile_rules([{"path": "question", "unique": True}, {"path": "options[].text", "unique": True}])

    def item(self, q: str, *options: str) -> dict[str, Any]:
        return {"question": q, "options": [{"text": o} for o in options]}

    def test_across_items(self) -> None:
        state = UniqueState()
        first = self.item("Q1", "a", "b")
        assert validate_item(first, mode="custom", rules=self.RULES, unique_state=state).valid
        state.commit(first, self.RULES)
        second = self.item("Q1", "c", "a")
        report = validate_item(second, mode="custom", rules=self.RULES, unique_state=state)
        assert paths(report) == [("$.question", "unique"), ("$.options[1].text", "unique")]

    def test_check_does_not_record(self) -> None:
        state = UniqueState()
        item = self.item("Q", "a")
        for _ in range(3):
            assert state.check(item, self.RULES) == []
        assert len(state) == 0
        state.commit(item, self.RULES)
        assert len(state) == 2
        assert state.check(item, self.RULES) != []

    def test_release_forgets_only_that_items_values(self) -> None:
        state = UniqueState()
        kept, reserved = self.item("Q1", "a"), self.item("Q2", "b")
        state.commit(kept, self.RULES)
        state.commit(reserved, self.RULES)
        assert state.check(self.item("Q2", "c"), self.RULES) != []
        state.release(reserved, self.RULES)
        assert len(state) == 2
        assert state.check(self.item("Q2", "b"), self.RULES) == []
        assert state.check(self.item("Q1", "c"), self.RULES) != []

    def test_within_one_item(self) -> None:
        report = validate_item(self.item("Q", "a", "b", "a"), mode="custom", rules=self.RULES)
        assert paths(report) == [("$.options[2].text", "unique")]
        assert "earlier in this item" in report.errors[0].message

    def test_serialisation_round_trip(self) -> None:
        state = UniqueState()
        state.commit(self.item("Q", "a"), self.RULES)
        state.add("meta.author", "me")
        snapshot = state.to_list()
        rebuilt = UniqueState.from_list(snapshot)
        assert rebuilt.to_list() == snapshot
        assert rebuilt.contains("question", "Q")
        assert rebuilt.contains("$.question", "Q")
        assert rebuilt.contains("meta.author", "me")
        assert not rebuilt.contains("question", "other")
        assert rebuilt.check(self.item("Q", "z"), self.RULES) != []

    def test_values_compare_as_json(self) -> None:
        state = UniqueState()
        state.add("x", {"a": 1, "b": 2})
        assert state.contains("x", {"b": 2, "a": 1})
        assert not state.contains("x", {"a": 1, "b": 2.5})


class TestReports:
    def test_errors_are_capped(self) -> None:
        rules = compile_rules([{"path": "items[]", "maximum": 0}])
        report = validate_item({"items": list(range(1, 101))}, mode="custom", rules=rules)
        assert len(report.errors) == 20
        assert report.error_count == 100
        assert report.as_text().endswith("… and 80 more")

    def test_custom_cap(self) -> None:
        rules = compile_rules([{"path": "items[]", "maximum": 0}])
        report = validate_item({"items": [1, 2, 3]}, mode="custom", rules=rules, max_errors=2)
        assert len(report.errors) == 2
        assert report.error_count == 3

    def test_excerpts_are_truncated(self) -> None:
        rules = compile_rules([{"path": "q", "max_length": 10}])
        report = validate_item({"q": "x" * 500}, mode="custom", rules=rules)
        excerpt = report.errors[0].value_excerpt
        assert excerpt is not None
        assert len(excerpt) <= 80
        assert excerpt.endswith("…")

    def test_strict_messages_are_short(self) -> None:
        report = validate_item(
            {"q": "y" * 5000}, mode="strict", schema={"properties": {"q": {"maxLength": 3}}}
        )
        assert len(report.errors[0].message) <= 300
        assert len(report.as_text()) < 600

    def test_as_text(self) -> None:
        rules = compile_rules([{"path": "answer", "pattern": "^[A-D]$"}])
        report = validate_item({"answer": "E"}, mode="custom", rules=rules)
        assert report.as_text() == "- $.answer [pattern]: must match ^[A-D]$ (got: E)"

    def test_report_is_json_serialisable(self) -> None:
        report = validate_item({"q": 1}, mode="custom", rules=[{"path": "q", "max_length": 1}])
        dumped = report.model_dump(mode="json")
        assert dumped["valid"] is False
        assert dumped["errors"][0]["path"] == "$.q"


class TestValidateOutput:
    def test_parse_then_validate(self) -> None:
        parsed, report = validate_output(
            '```json\n{"q": "abc"}\n```',
            output_format="json",
            mode="custom",
            rules=[{"path": "q", "max_length": 2}],
        )
        assert parsed.ok
        assert paths(report) == [("$.q", "max_length")]

    def test_parse_failure_is_a_report(self) -> None:
        parsed, report = validate_output("sorry, I can't", output_format="json", mode="none")
        assert not parsed.ok
        assert paths(report) == [("$", "parse")]


class TestHelpers:
    def test_canonical_json(self) -> None:
        assert (
            canonical_json({"b": [1, {"d": 1, "c": "ё"}], "a": None}) == '{"a":null,"b":[1,{"c":"ё","d":1}]}'
        )
        assert content_hash({"a": 1, "b": 2}) == content_hash({"b": 2, "a": 1})
        assert len(content_hash("x")) == 64

    def test_parse_path(self) -> None:
        assert parse_path("options[].text") == (("key", "options"), ("each", None), ("key", "text"))
        assert parse_path("$.meta.author") == (("key", "meta"), ("key", "author"))
        assert parse_path("$") == ()
        assert parse_path(".") == ()
        assert parse_path("a[2]") == (("key", "a"), ("index", 2))

    def test_rule_paths_missing_from_schema(self) -> None:
        rules = [
            {"path": "question", "max_length": 1},
            {"path": "options[].text", "max_length": 1},
            {"path": "options[].label", "max_length": 1},
            {"path": "meta.author", "required": True},
            {"path": "meta.editor", "required": True},
            {"path": "nope", "required": True},
            {"path": "$", "required": True},
        ]
        assert rule_paths_missing_from_schema(rules, QUIZ_SCHEMA) == [
            "options[].label",
            "meta.editor",
            "nope",
        ]

    def test_rule_paths_follow_refs_and_combinators(self) -> None:
        schema = {
            "$defs": {"opt": {"type": "object", "properties": {"text": {"type": "string"}}}},
            "allOf": [{"properties": {"options": {"type": "array", "items": {"$ref": "#/$defs/opt"}}}}],
            "properties": {"free": {}},
        }
        rules = [
            {"path": "options[].text", "required": True},
            {"path": "options[].x", "required": True},
            {"path": "free.anything", "required": True},
        ]
        assert rule_paths_missing_from_schema(rules, schema) == ["options[].x"]
