"""Strict mode's JSON Schema: checking a schema (metaschema, unsafe regexes), compiling it once, applying it."""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator, validators  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict

from llmts_templating._paths import _key_path
from llmts_templating._report import (
    _MESSAGE,
    ValidationIssue,
    _clip,
    _issue,
    _json_type,
    canonical_json,
)
from llmts_templating._schema_regex import _bounded_validator_class
from llmts_templating.patterns import PatternError, compile_pattern


class SchemaIssue(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    message: str


class SchemaError(ValueError):
    def __init__(self, issues: list[SchemaIssue]) -> None:
        super().__init__("; ".join(f"{i.path}: {i.message}" for i in issues[:5]))
        self.issues = issues


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
