"""Validation of generated items: ``strict`` (JSON Schema 2020-12/draft-07 with formats, plus any rules),
``custom`` (only the rules), ``none`` (parse only).

Reports are short on purpose (paths, rule names, clipped excerpts, at most ``max_errors`` entries) so
they can be fed back to the model in a repair prompt (:meth:`ValidationReport.as_text`).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from jsonschema import Draft202012Validator, ValidationError, validators  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from llmts_templating.parse import OutputFormat, ParseResult, parse_output
from llmts_templating.patterns import BoundedPattern, PatternError, PatternTimeoutError, compile_pattern

__all__ = [
    "DEFAULT_MAX_ERRORS",
    "CompiledRule",
    "CompiledRules",
    "CompiledSchema",
    "Rule",
    "RuleError",
    "RuleProblem",
    "SchemaError",
    "SchemaIssue",
    "UniqueState",
    "ValidationIssue",
    "ValidationMode",
    "ValidationReport",
    "canonical_json",
    "check_rules",
    "check_schema",
    "compile_rules",
    "compile_schema",
    "content_hash",
    "parse_path",
    "rule_paths_missing_from_schema",
    "validate_item",
    "validate_output",
]

ValidationMode = Literal["strict", "custom", "none"]
DEFAULT_MAX_ERRORS = 20
_EXCERPT = 80
_MESSAGE = 300
_MAX_SCANNED_ERRORS = 1000


# --------------------------------------------------------------------------------------------------
# canonical JSON


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 kept: equal JSON values give equal strings (for duplicates)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def content_hash(value: Any) -> str:
    """sha256 hex of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _excerpt(value: Any) -> str | None:
    if value is _MISSING:
        return None
    try:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    except (ValueError, TypeError, RecursionError):
        text = repr(value)
    return _clip(text, _EXCERPT)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


# --------------------------------------------------------------------------------------------------
# reports


class ValidationIssue(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str = Field(description="JSON path of the offending value, e.g. $.options[2].text")
    rule: str = Field(description="rule or JSON Schema keyword that failed, e.g. max_length, required")
    message: str
    value_excerpt: str | None = Field(None, description="the value, clipped to ~80 characters")


class ValidationReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    valid: bool
    errors: list[ValidationIssue] = Field(default_factory=list)
    error_count: int = Field(0, description="errors found (``errors`` holds at most max_errors of them)")

    def as_text(self) -> str:
        """Compact text for a repair prompt."""
        if self.valid:
            return "valid"
        lines = []
        for issue in self.errors:
            got = f" (got: {issue.value_excerpt})" if issue.value_excerpt is not None else ""
            lines.append(f"- {issue.path} [{issue.rule}]: {issue.message}{got}")
        if self.error_count > len(self.errors):
            lines.append(f"- … and {self.error_count - len(self.errors)} more")
        return "\n".join(lines)


def _report(issues: Iterable[ValidationIssue], max_errors: int) -> ValidationReport:
    collected = list(itertools.islice(issues, _MAX_SCANNED_ERRORS))
    return ValidationReport(valid=not collected, errors=collected[:max_errors], error_count=len(collected))


class SchemaIssue(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    message: str


class SchemaError(ValueError):
    def __init__(self, issues: list[SchemaIssue]) -> None:
        super().__init__("; ".join(f"{i.path}: {i.message}" for i in issues[:5]))
        self.issues = issues


# --------------------------------------------------------------------------------------------------
# paths: `question`, `meta.author`, `options[].text`, `options[0]`, `$`, `$.a.b`

_SEGMENT = re.compile(r"^(?P<name>[^\[\]]*)(?P<idx>(?:\[\d*\])*)$")
_INDEX = re.compile(r"\[(\d*)\]")
_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Step = tuple[Literal["key", "each", "index"], str | int | None]


def parse_path(path: str) -> tuple[Step, ...]:
    """Steps of a rule path; ``$``, ``.`` or ``""`` is the item itself. Raises ValueError."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    if text.startswith("."):
        text = text[1:]
    if not text:
        return ()
    steps: list[Step] = []
    for position, part in enumerate(text.split(".")):
        match = _SEGMENT.match(part)
        if match is None:
            raise ValueError(f"invalid path segment {part!r} (use a.b, a[].b or a[0])")
        name, indexes = match["name"], match["idx"]
        if not name and (position > 0 or not indexes):
            raise ValueError(f"empty segment in path {path!r}")
        if name:
            steps.append(("key", name))
        for index in _INDEX.findall(indexes):
            steps.append(("each", None) if index == "" else ("index", int(index)))
    return tuple(steps)


def _path_text(steps: Sequence[Step]) -> str:
    out = ""
    for kind, arg in steps:
        if kind == "key":
            out += f".{arg}" if out else str(arg)
        elif kind == "each":
            out += "[]"
        else:
            out += f"[{arg}]"
    return out or "$"


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


def _key_path(base: str, key: str) -> str:
    return f"{base}.{key}" if _SIMPLE_KEY.match(key) else f"{base}[{json.dumps(key, ensure_ascii=False)}]"


def _resolve(value: Any, steps: Sequence[Step]) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = [("$", value)]
    for kind, arg in steps:
        following: list[tuple[str, Any]] = []
        for path, current in found:
            if kind == "key":
                assert isinstance(arg, str)
                child = current.get(arg, _MISSING) if isinstance(current, dict) else _MISSING
                following.append((_key_path(path, arg), child))
            elif kind == "each":
                if isinstance(current, list):
                    following.extend((f"{path}[{i}]", item) for i, item in enumerate(current))
            else:
                assert isinstance(arg, int)
                ok = isinstance(current, list) and arg < len(current)
                following.append((f"{path}[{arg}]", current[arg] if ok else _MISSING))
        found = following
    return found


# --------------------------------------------------------------------------------------------------
# rules


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


def _issue(path: str, rule: str, message: str, value: Any = _MISSING) -> ValidationIssue:
    return ValidationIssue(
        path=path, rule=rule, message=_clip(message, _MESSAGE), value_excerpt=_excerpt(value)
    )


def _check_value(compiled: CompiledRule, path: str, value: Any) -> Iterator[ValidationIssue]:
    rule = compiled.rule
    if value is _MISSING or value is None:
        if rule.required:
            yield _issue(path, "required", "is required" if value is _MISSING else "must not be null")
        return
    string_rules = [
        n for n in ("min_length", "max_length", "pattern", "date_format") if getattr(rule, n) is not None
    ]
    if string_rules:
        if not isinstance(value, str):
            yield _issue(path, string_rules[0], f"expected a string, got {_json_type(value)}", value)
        else:
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
                    yield _issue(
                        path, "date_format", f"must be a date in the format {rule.date_format}", value
                    )
    if rule.minimum is not None or rule.maximum is not None:
        name = "minimum" if rule.minimum is not None else "maximum"
        if not isinstance(value, int | float) or isinstance(value, bool):
            yield _issue(path, name, f"expected a number, got {_json_type(value)}", value)
        else:
            if rule.minimum is not None and value < rule.minimum:
                yield _issue(path, "minimum", f"must be >= {rule.minimum}", value)
            if rule.maximum is not None and value > rule.maximum:
                yield _issue(path, "maximum", f"must be <= {rule.maximum}", value)
    if rule.min_items is not None or rule.max_items is not None:
        name = "min_items" if rule.min_items is not None else "max_items"
        if not isinstance(value, list):
            yield _issue(path, name, f"expected an array, got {_json_type(value)}", value)
        else:
            count = len(value)
            if rule.min_items is not None and count < rule.min_items:
                yield _issue(
                    path, "min_items", f"must have at least {rule.min_items} items (has {count})", value
                )
            if rule.max_items is not None and count > rule.max_items:
                yield _issue(
                    path, "max_items", f"must have at most {rule.max_items} items (has {count})", value
                )
    if compiled.enum_keys is not None:
        try:
            key = canonical_json(value)
        except (TypeError, ValueError):
            key = None
        if key not in compiled.enum_keys:
            options = ", ".join(_clip(json.dumps(v, ensure_ascii=False), 40) for v in (rule.enum or [])[:10])
            yield _issue(path, "enum", f"must be one of: {options}", value)


def _apply_rules(value: Any, rules: CompiledRules) -> Iterator[ValidationIssue]:
    for compiled in rules.rules:
        for path, found in _resolve(value, compiled.steps):
            yield from _check_value(compiled, path, found)


# --------------------------------------------------------------------------------------------------
# uniqueness across a job


def _fingerprint(value: Any) -> str | None:
    try:
        return content_hash(value)
    except (TypeError, ValueError, RecursionError):
        return None


class UniqueState:
    """Values already accepted for ``unique`` rules in one job, as ``(rule path, sha256)`` pairs.

    :meth:`check` never records; call :meth:`commit` once the item is accepted (stored). Rebuild after a
    crash with :meth:`from_list` (a snapshot from :meth:`to_list`) or by committing the stored items.
    """

    def __init__(self, entries: Iterable[Sequence[str]] = ()) -> None:
        self._seen: dict[str, set[str]] = {}
        for key, digest in entries:
            self._seen.setdefault(str(key), set()).add(str(digest))

    @staticmethod
    def _key(path: str) -> str:
        return _path_text(parse_path(path))

    def contains(self, path: str, value: Any) -> bool:
        digest = _fingerprint(value)
        return digest is not None and digest in self._seen.get(self._key(path), ())

    def add(self, path: str, value: Any) -> None:
        digest = _fingerprint(value)
        if digest is not None:
            self._seen.setdefault(self._key(path), set()).add(digest)

    def _values(self, value: Any, rules: CompiledRules) -> Iterator[tuple[CompiledRule, str, Any, str]]:
        for compiled in rules.unique:
            for path, found in _resolve(value, compiled.steps):
                if found is _MISSING or found is None:
                    continue
                digest = _fingerprint(found)
                if digest is not None:
                    yield compiled, path, found, digest

    def check(self, value: Any, rules: CompiledRules) -> list[ValidationIssue]:
        """Duplicates of committed values, and duplicates inside ``value`` itself. Records nothing."""
        return list(_unique_issues(value, rules, self._seen))

    def commit(self, value: Any, rules: CompiledRules) -> None:
        """Record the unique values of an accepted item."""
        for compiled, _path, _found, digest in self._values(value, rules):
            self._seen.setdefault(compiled.key, set()).add(digest)

    def to_list(self) -> list[list[str]]:
        return [[key, digest] for key in sorted(self._seen) for digest in sorted(self._seen[key])]

    @classmethod
    def from_list(cls, entries: Iterable[Sequence[str]]) -> UniqueState:
        return cls(entries)

    def __len__(self) -> int:
        return sum(len(digests) for digests in self._seen.values())


def _unique_issues(
    value: Any, rules: CompiledRules, seen: Mapping[str, set[str]]
) -> Iterator[ValidationIssue]:
    local: dict[str, set[str]] = {}
    for compiled in rules.unique:
        for path, found in _resolve(value, compiled.steps):
            if found is _MISSING or found is None:
                continue
            digest = _fingerprint(found)
            if digest is None:
                continue
            bucket = local.setdefault(compiled.key, set())
            if digest in seen.get(compiled.key, ()):
                yield _issue(path, "unique", "duplicate: this value was already generated in this job", found)
            elif digest in bucket:
                yield _issue(path, "unique", "duplicate: the same value appears earlier in this item", found)
            bucket.add(digest)


# --------------------------------------------------------------------------------------------------
# JSON Schema with bounded regexes


def _bounded_search(pattern: str, text: str) -> bool | str:
    """True/False, or an error message when the pattern cannot be used or timed out."""
    try:
        return compile_pattern(pattern).search(text)
    except PatternError as exc:
        return f"pattern {pattern!r} cannot be used: {exc}"
    except PatternTimeoutError as exc:
        return str(exc)


def _kw_pattern(
    validator: Any, pattern: str, instance: Any, _schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "string"):
        return
    result = _bounded_search(pattern, instance)
    if isinstance(result, str):
        yield ValidationError(result)
    elif not result:
        yield ValidationError(f"{_clip(repr(instance), _EXCERPT)} does not match {pattern!r}")


def _kw_pattern_properties(validator: Any, patterns: Mapping[str, Any], instance: Any, _schema: Mapping[str, Any]) -> Iterator[ValidationError]:  # fmt: skip
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, item in instance.items():
            result = _bounded_search(pattern, key)
            if isinstance(result, str):
                yield ValidationError(result)
            elif result:
                yield from validator.descend(item, subschema, path=key, schema_path=pattern)


def _kw_additional_properties(validator: Any, additional: Any, instance: Any, schema: Mapping[str, Any]) -> Iterator[ValidationError]:  # fmt: skip
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [
        key
        for key in instance
        if key not in properties and not any(_bounded_search(p, key) is True for p in patterns)
    ]
    if validator.is_type(additional, "object"):
        for key in extras:
            yield from validator.descend(instance[key], additional, path=key)
    elif not additional and extras:
        names = ", ".join(repr(k) for k in sorted(extras, key=str)[:10])
        yield ValidationError(f"Additional properties are not allowed ({names} unexpected)")


@functools.cache
def _bounded_validator_class(base: Any) -> Any:
    return validators.extend(
        base,
        {
            "pattern": _kw_pattern,
            "patternProperties": _kw_pattern_properties,
            "additionalProperties": _kw_additional_properties,
        },
    )


def _validator_class(schema: Any) -> Any:
    if isinstance(schema, Mapping) and "$schema" in schema:
        return validators.validator_for(schema, default=None)
    return Draft202012Validator


def _walk_patterns(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, Mapping):
        for key, child in node.items():
            child_path = _key_path(path, str(key))
            if key == "pattern" and isinstance(child, str):
                yield child_path, child
            elif key == "patternProperties" and isinstance(child, Mapping):
                for pattern in child:
                    yield _key_path(child_path, str(pattern)), str(pattern)
            if key not in ("enum", "const", "examples", "default"):
                yield from _walk_patterns(child, child_path)
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from _walk_patterns(child, f"{path}[{i}]")


def check_schema(schema: Any) -> list[SchemaIssue]:
    """Problems of a JSON Schema: against its metaschema (2020-12, or the draft its ``$schema`` names,
    e.g. draft-07), an unknown ``$schema``, and ``pattern``/``patternProperties`` regexes that are
    invalid or unsafe (see :mod:`llmts_templating.patterns`)."""
    if not isinstance(schema, Mapping | bool):
        return [
            SchemaIssue(
                path="$", message=f"a schema must be an object or a boolean, got {_json_type(schema)}"
            )
        ]
    cls = _validator_class(schema)
    if cls is None:
        assert isinstance(schema, Mapping)
        return [SchemaIssue(path="$.$schema", message=f"unsupported $schema {str(schema['$schema'])!r}")]
    meta_validator = validators.validator_for(cls.META_SCHEMA)(cls.META_SCHEMA)
    issues: list[SchemaIssue] = []
    try:
        for error in itertools.islice(meta_validator.iter_errors(schema), 50):
            issues.append(SchemaIssue(path=error.json_path, message=_clip(error.message, _MESSAGE)))
    except RecursionError:
        issues.append(SchemaIssue(path="$", message="schema is nested too deeply"))
    for path, pattern in _walk_patterns(schema, "$"):
        try:
            compile_pattern(pattern)
        except PatternError as exc:
            issues.append(SchemaIssue(path=path, message=str(exc)))
    return issues


@dataclass(frozen=True)
class CompiledSchema:
    schema: Any
    validator: Any
    draft: str


def _draft_name(cls: Any) -> str:
    return str(getattr(cls, "__name__", "Validator")).removesuffix("Validator")


@functools.lru_cache(maxsize=128)
def _compile_schema_text(text: str) -> CompiledSchema:
    schema = json.loads(text)
    issues = check_schema(schema)
    if issues:
        raise SchemaError(issues)
    cls = _validator_class(schema)
    bounded = _bounded_validator_class(cls)
    return CompiledSchema(schema, bounded(schema, format_checker=cls.FORMAT_CHECKER), _draft_name(cls))


def compile_schema(schema: Any) -> CompiledSchema:
    """Check and compile a schema (cached by its canonical JSON); raises :class:`SchemaError`."""
    if isinstance(schema, CompiledSchema):
        return schema
    try:
        text = canonical_json(schema)
    except (TypeError, ValueError) as exc:
        raise SchemaError([SchemaIssue(path="$", message=f"schema is not JSON: {exc}")]) from None
    return _compile_schema_text(text)


def _schema_issues(value: Any, compiled: CompiledSchema) -> Iterator[ValidationIssue]:
    try:
        for error in compiled.validator.iter_errors(value):
            yield _issue(error.json_path, str(error.validator), error.message, error.instance)
    except RecursionError:
        yield _issue("$", "schema", "value is nested too deeply")
    except Exception as exc:  # unresolvable $ref and similar schema-side failures
        yield _issue("$", "schema", f"schema could not be applied: {type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------------------------------
# entry points


def validate_item(
    value: Any,
    *,
    mode: ValidationMode,
    schema: Mapping[str, Any] | bool | CompiledSchema | None = None,
    rules: CompiledRules | Sequence[Rule | Mapping[str, Any]] | None = None,
    unique_state: UniqueState | None = None,
    output_format: OutputFormat = "json",
    max_errors: int = DEFAULT_MAX_ERRORS,
) -> ValidationReport:
    """Validate one parsed item.

    * ``strict``: JSON output is checked against ``schema`` (required) with format assertions, then the
      rules (if any); text output must be a non-empty string, then the rules.
    * ``custom``: only the rules.
    * ``none``: always valid (parsing already happened).

    ``unique`` rules compare with the values committed to ``unique_state`` (without recording; call
    ``unique_state.commit(value, rules)`` after accepting the item) and within the item itself.
    Raises only for programming errors (strict JSON without a schema, malformed schema or rules).
    """
    if mode == "none":
        return ValidationReport(valid=True)
    if mode not in ("strict", "custom"):
        raise ValueError(f"unknown validation mode {mode!r}")
    compiled_rules = (
        rules if isinstance(rules, CompiledRules) else compile_rules(rules, output_format=output_format)
    )
    compiled_schema: CompiledSchema | None = None
    if mode == "strict" and output_format == "json":
        if schema is None:
            raise ValueError("strict validation of JSON output needs a schema")
        compiled_schema = compile_schema(schema)

    def issues() -> Iterator[ValidationIssue]:
        if mode == "strict":
            if output_format == "text":
                if not isinstance(value, str) or not value.strip():
                    yield _issue("$", "non_empty", "the output must be non-empty text", value)
            elif compiled_schema is not None:
                yield from _schema_issues(value, compiled_schema)
        yield from _apply_rules(value, compiled_rules)
        if compiled_rules.unique:
            yield from _unique_issues(value, compiled_rules, unique_state._seen if unique_state else {})

    return _report(issues(), max_errors)


def validate_output(
    text: str,
    *,
    output_format: OutputFormat,
    mode: ValidationMode,
    schema: Mapping[str, Any] | bool | CompiledSchema | None = None,
    rules: CompiledRules | Sequence[Rule | Mapping[str, Any]] | None = None,
    unique_state: UniqueState | None = None,
    max_errors: int = DEFAULT_MAX_ERRORS,
) -> tuple[ParseResult, ValidationReport]:
    """Lenient parse then :func:`validate_item`; a parse failure is a report with rule ``parse``."""
    parsed = parse_output(text, output_format)
    if not parsed.ok:
        issue = _issue("$", "parse", parsed.error or "could not parse the output", text)
        return parsed, ValidationReport(valid=False, errors=[issue], error_count=1)
    report = validate_item(
        parsed.value,
        mode=mode,
        schema=schema,
        rules=rules,
        unique_state=unique_state,
        output_format=output_format,
        max_errors=max_errors,
    )
    return parsed, report


# --------------------------------------------------------------------------------------------------
# rules vs schema


def _local_ref(root: Any, node: Any) -> Any:
    ref = node.get("$ref") if isinstance(node, Mapping) else None
    if not isinstance(ref, str) or not ref.startswith("#"):
        return None
    target = root
    for part in [p for p in ref[1:].split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(target, Mapping) and part in target:
            target = target[part]
        elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
            target = target[int(part)]
        else:
            return None
    return target


def _alternatives(root: Any, node: Any, depth: int = 0) -> list[Any]:
    """The node plus what it combines (allOf/anyOf/oneOf/then/else, local $ref)."""
    if depth > 20 or not isinstance(node, Mapping):
        return [node]
    found = [node]
    referenced = _local_ref(root, node)
    if referenced is not None:
        found.extend(_alternatives(root, referenced, depth + 1))
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in node.get(key, []) if isinstance(node.get(key), list) else []:
            found.extend(_alternatives(root, sub, depth + 1))
    for key in ("then", "else"):
        if key in node:
            found.extend(_alternatives(root, node[key], depth + 1))
    return found


def _declares(root: Any, nodes_: list[Any], step: Step) -> list[Any] | None:
    """Sub-schemas reached by ``step``; None when the schema declares structure but not this step."""
    kind, arg = step
    reached: list[Any] = []
    constrained = False
    for node in nodes_:
        for alt in _alternatives(root, node):
            if not isinstance(alt, Mapping):
                continue
            if kind == "key":
                props = alt.get("properties")
                if isinstance(props, Mapping):
                    constrained = True
                    if arg in props:
                        reached.append(props[arg])
                pattern_props = alt.get("patternProperties")
                if isinstance(pattern_props, Mapping):
                    constrained = True
                    reached.extend(
                        sub for p, sub in pattern_props.items() if _bounded_search(p, str(arg)) is True
                    )
                if alt.get("additionalProperties") not in (None, False, True):
                    reached.append(alt["additionalProperties"])
            else:
                items = alt.get("items")
                prefix = alt.get("prefixItems")
                if isinstance(items, Mapping | bool) or isinstance(prefix, list):
                    constrained = True
                if isinstance(items, Mapping):
                    reached.append(items)
                if isinstance(prefix, list):
                    if kind == "index" and isinstance(arg, int) and arg < len(prefix):
                        reached.append(prefix[arg])
                    elif kind == "each":
                        reached.extend(prefix)
                if isinstance(items, list):  # draft-07 tuple form
                    constrained = True
                    reached.extend(items)
    if reached:
        return reached
    return None if constrained else []


def rule_paths_missing_from_schema(rules: Sequence[Rule | Mapping[str, Any]] | CompiledRules, schema: Any) -> list[str]:  # fmt: skip
    """Rule paths naming properties the schema does not declare (for warnings). A part of the schema
    that declares nothing (``{}``) accepts any path; malformed rules are skipped."""
    if isinstance(rules, CompiledRules):
        paths = [(c.rule.path, c.steps) for c in rules.rules]
    else:
        paths = []
        for raw in rules:
            path = (
                raw.path if isinstance(raw, Rule) else raw.get("path") if isinstance(raw, Mapping) else None
            )
            if isinstance(path, str):
                try:
                    paths.append((path, parse_path(path)))
                except ValueError:
                    continue
    missing: list[str] = []
    for path, steps in paths:
        current: list[Any] = [schema]
        for step in steps:
            reached = _declares(schema, current, step)
            if reached is None:
                if path not in missing:
                    missing.append(path)
                break
            if not reached:
                break
            current = reached
    return missing


# Python's strptime is not thread-safe on first use; warm it up at import.
datetime.strptime("2000", "%Y")
