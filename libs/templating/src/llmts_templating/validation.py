"""Validation of generated items: ``strict`` (JSON Schema 2020-12/draft-07 with formats, plus any rules),
``custom`` (only the rules), ``none`` (parse only).

Reports are short on purpose (paths, rule names, clipped excerpts, at most ``max_errors`` entries) so
they can be fed back to the model in a repair prompt (:meth:`ValidationReport.as_text`).

This module is the public surface (entry points and re-exports); the parts live in private modules:
``_report`` (issues, reports, canonical JSON), ``_paths`` (rule paths), ``_rules`` (custom rules),
``_unique`` (``unique`` across a job), ``_schema`` (strict JSON Schema), ``_schema_regex`` (bounded regex
keywords), ``_schema_paths`` (rule paths the schema does not declare).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from llmts_templating._paths import parse_path
from llmts_templating._report import (
    DEFAULT_MAX_ERRORS,
    ValidationIssue,
    ValidationReport,
    _issue,
    _report,
    canonical_json,
    content_hash,
)
from llmts_templating._rules import (
    CompiledRule,
    CompiledRules,
    Rule,
    RuleError,
    RuleProblem,
    _apply_rules,
    check_rules,
    compile_rules,
)
from llmts_templating._schema import (
    CompiledSchema,
    SchemaError,
    SchemaIssue,
    _schema_issues,
    check_schema,
    compile_schema,
)
from llmts_templating._schema_paths import rule_paths_missing_from_schema
from llmts_templating._unique import UniqueState, _unique_issues
from llmts_templating.parse import OutputFormat, ParseResult, parse_output

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


# Python's strptime is not thread-safe on first use; warm it up at import.
datetime.strptime("2000", "%Y")
