"""Custom rules: the ``Rule`` model, compiling rules (paths, regexes, date formats) and checking values."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from llmts_templating._paths import Step, _path_text, _resolve, parse_path
from llmts_templating._report import (
    _MISSING,
    ValidationIssue,
    _clip,
    _issue,
    _json_type,
    canonical_json,
)
from llmts_templating.parse import OutputFormat
from llmts_templating.patterns import BoundedPattern, PatternError, PatternTimeoutError, compile_pattern


class Rule(BaseModel):
    """One custom rule. Constraints on a missing or null value are skipped unless ``required``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(min_length=1, max_length=500)
    min_length: int | None = Field(None, ge=0)
    max_length: int | None = Field(None, ge=0)
    pattern: str | None = None
    date_format: str | None = Field(None, min_length=1, max_length=100)
    enum: list[Any] | None = Field(None, min_length=1, max_length=1000)
    minimum: int | float | None = None
    maximum: int | float | None = None
    min_items: int | None = Field(None, ge=0)
    max_items: int | None = Field(None, ge=0)
    required: bool = False
    unique: bool = False


_CONSTRAINTS = ("min_length", "max_length", "pattern", "date_format", "enum", "minimum", "maximum", "min_items", "max_items")  # fmt: skip


_TEXT_CONSTRAINTS = frozenset({"min_length", "max_length", "pattern"})


@dataclass(frozen=True)
class RuleProblem:
    index: int
    path: str | None
    message: str

    def __str__(self) -> str:
        where = f" ({self.path})" if self.path else ""
        return f"rule {self.index}{where}: {self.message}"


class RuleError(ValueError):
    """Malformed rules. ``index``/``reason`` describe the first problem, ``problems`` all of them."""

    def __init__(self, problems: list[RuleProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems
        self.index = problems[0].index
        self.path = problems[0].path
        self.reason = problems[0].message


@dataclass(frozen=True)
class CompiledRule:
    index: int
    rule: Rule
    steps: tuple[Step, ...]
    key: str  # canonical path text, used by UniqueState
    pattern: BoundedPattern | None = None
    enum_keys: frozenset[str] | None = None


@dataclass(frozen=True)
class CompiledRules:
    rules: tuple[CompiledRule, ...] = ()
    output_format: OutputFormat = "json"
    unique: tuple[CompiledRule, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.rules)


def _pydantic_problem(index: int, path: str | None, exc: PydanticValidationError) -> list[RuleProblem]:
    problems = []
    for error in exc.errors():
        loc = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            message = f"unknown key {loc!r} (allowed: path, {', '.join(_CONSTRAINTS)}, required, unique)"
        else:
            message = f"{loc}: {error['msg']}" if loc else str(error["msg"])
        problems.append(RuleProblem(index, path, message))
    return problems


_DATE_SAMPLE = datetime(2001, 2, 3, 4, 5, 6, 7000, tzinfo=timezone(timedelta(hours=3)))


def _check_date_format(fmt: str) -> str | None:
    if "%" not in fmt:
        return "date_format needs at least one % directive, e.g. %Y-%m-%d"
    try:
        datetime.strptime(_DATE_SAMPLE.strftime(fmt), fmt)
    except (ValueError, TypeError) as exc:
        return f"invalid date_format {fmt!r}: {exc}"
    return None


def _compile_one(index: int, raw: Any, output_format: OutputFormat) -> tuple[CompiledRule | None, list[RuleProblem]]:  # fmt: skip
    raw_path = raw.path if isinstance(raw, Rule) else (raw.get("path") if isinstance(raw, Mapping) else None)
    path = raw_path if isinstance(raw_path, str) else None
    if isinstance(raw, Rule):
        rule = raw
    elif isinstance(raw, Mapping):
        try:
            rule = Rule.model_validate(dict(raw))
        except PydanticValidationError as exc:
            return None, _pydantic_problem(index, path, exc)
    else:
        return None, [RuleProblem(index, None, f"a rule must be an object, got {_json_type(raw)}")]
    problems: list[RuleProblem] = []

    def problem(message: str) -> None:
        problems.append(RuleProblem(index, rule.path, message))

    try:
        steps = parse_path(rule.path)
    except ValueError as exc:
        problem(str(exc))
        steps = ()
    set_constraints = [name for name in _CONSTRAINTS if getattr(rule, name) is not None]
    if not set_constraints and not rule.required and not rule.unique:
        problem("the rule has no constraint (set e.g. max_length, pattern, required or unique)")
    for low, high in (("min_length", "max_length"), ("minimum", "maximum"), ("min_items", "max_items")):
        lo, hi = getattr(rule, low), getattr(rule, high)
        if lo is not None and hi is not None and lo > hi:
            problem(f"{low} ({lo}) is greater than {high} ({hi})")
    for name in ("minimum", "maximum"):
        number = getattr(rule, name)
        if isinstance(number, float) and not math.isfinite(number):
            problem(f"{name} must be a finite number")
    if output_format == "text":
        if steps:
            problem("text output has no fields: use path '$'")
        extra = [name for name in set_constraints if name not in _TEXT_CONSTRAINTS]
        if extra:
            problem(f"{', '.join(extra)} do not apply to text output (only min_length, max_length, pattern)")
    pattern: BoundedPattern | None = None
    if rule.pattern is not None:
        try:
            pattern = compile_pattern(rule.pattern)
        except PatternError as exc:
            problem(f"pattern: {exc}")
    if rule.date_format is not None and (reason := _check_date_format(rule.date_format)):
        problem(reason)
    enum_keys: frozenset[str] | None = None
    if rule.enum is not None:
        try:
            enum_keys = frozenset(canonical_json(item) for item in rule.enum)
        except (TypeError, ValueError) as exc:
            problem(f"enum values must be JSON values: {exc}")
    if problems:
        return None, problems
    return CompiledRule(index, rule, steps, _path_text(steps), pattern, enum_keys), []


def check_rules(rules: Sequence[Any], *, output_format: OutputFormat = "json") -> list[RuleProblem]:  # fmt: skip
    """Every problem of every rule (for a validate endpoint); empty when all rules compile."""
    problems: list[RuleProblem] = []
    for index, raw in enumerate(rules):
        problems.extend(_compile_one(index, raw, output_format)[1])
    return problems


def compile_rules(rules: Sequence[Any] | None, *, output_format: OutputFormat = "json") -> CompiledRules:  # fmt: skip
    """Validate and compile rules (regexes, date formats, paths); raises :class:`RuleError`."""
    if not rules:
        return CompiledRules(output_format=output_format)
    if isinstance(rules, str | bytes) or not isinstance(rules, Sequence):
        raise RuleError([RuleProblem(0, None, "rules must be a list")])
    compiled: list[CompiledRule] = []
    problems: list[RuleProblem] = []
    for index, raw in enumerate(rules):
        rule, found = _compile_one(index, raw, output_format)
        problems.extend(found)
        if rule is not None:
            compiled.append(rule)
    if problems:
        raise RuleError(problems)
    return CompiledRules(tuple(compiled), output_format, tuple(r for r in compiled if r.rule.unique))


def _string_issues(compiled: CompiledRule, path: str, value: Any) -> Iterator[ValidationIssue]:
    rule = compiled.rule
    string_rules = [
        n for n in ("min_length", "max_length", "pattern", "date_format") if getattr(rule, n) is not None
    ]
    if not string_rules:
        return
    if not isinstance(value, str):
        yield _issue(path, string_rules[0], f"expected a string, got {_json_type(value)}", value)
        return
    length = len(value)
    if rule.min_length is not None and length < rule.min_length:
        yield _issue(
            path, "min_length", f"must be at least {rule.min_length} characters (has {length})", value
        )
    if rule.max_length is not None and length > rule.max_length:
        yield _issue(
            path, "max_length", f"must be at most {rule.max_length} characters (has {length})", value
        )
    if compiled.pattern is not None:
        try:
            matched = compiled.pattern.search(value)
        except PatternTimeoutError:
            yield _issue(path, "pattern", "pattern check timed out; treat as not matching", value)
        else:
            if not matched:
                yield _issue(path, "pattern", f"must match {rule.pattern}", value)
    if rule.date_format is not None:
        try:
            datetime.strptime(value, rule.date_format)
        except ValueError:
            yield _issue(path, "date_format", f"must be a date in the format {rule.date_format}", value)


def _number_issues(rule: Rule, path: str, value: Any) -> Iterator[ValidationIssue]:
    if rule.minimum is None and rule.maximum is None:
        return
    if not isinstance(value, int | float) or isinstance(value, bool):
        name = "minimum" if rule.minimum is not None else "maximum"
        yield _issue(path, name, f"expected a number, got {_json_type(value)}", value)
        return
    if rule.minimum is not None and value < rule.minimum:
        yield _issue(path, "minimum", f"must be >= {rule.minimum}", value)
    if rule.maximum is not None and value > rule.maximum:
        yield _issue(path, "maximum", f"must be <= {rule.maximum}", value)


def _items_issues(rule: Rule, path: str, value: Any) -> Iterator[ValidationIssue]:
    if rule.min_items is None and rule.max_items is None:
        return
    if not isinstance(value, list):
        name = "min_items" if rule.min_items is not None else "max_items"
        yield _issue(path, name, f"expected an array, got {_json_type(value)}", value)
        return
    count = len(value)
    if rule.min_items is not None and count < rule.min_items:
        yield _issue(path, "min_items", f"must have at least {rule.min_items} items (has {count})", value)
    if rule.max_items is not None and count > rule.max_items:
        yield _issue(path, "max_items", f"must have at most {rule.max_items} items (has {count})", value)


def _enum_issues(compiled: CompiledRule, path: str, value: Any) -> Iterator[ValidationIssue]:
    if compiled.enum_keys is None:
        return
    try:
        key = canonical_json(value)
    except (TypeError, ValueError):
        key = None
    if key not in compiled.enum_keys:
        options = ", ".join(
            _clip(json.dumps(v, ensure_ascii=False), 40) for v in (compiled.rule.enum or [])[:10]
        )
        yield _issue(path, "enum", f"must be one of: {options}", value)


def _check_value(compiled: CompiledRule, path: str, value: Any) -> Iterator[ValidationIssue]:
    """Every constraint of one rule on one value; a missing or null value only meets ``required``."""
    rule = compiled.rule
    if value is _MISSING or value is None:
        if rule.required:
            yield _issue(path, "required", "is required" if value is _MISSING else "must not be null")
        return
    yield from _string_issues(compiled, path, value)
    yield from _number_issues(rule, path, value)
    yield from _items_issues(rule, path, value)
    yield from _enum_issues(compiled, path, value)


def _apply_rules(value: Any, rules: CompiledRules) -> Iterator[ValidationIssue]:
    for compiled in rules.rules:
        for path, found in _resolve(value, compiled.steps):
            yield from _check_value(compiled, path, found)
