"""Validation reports: issues, the report, canonical JSON and clipping (shared by rules and schemas)."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_MAX_ERRORS = 20

_EXCERPT = 80

_MESSAGE = 300

_MAX_SCANNED_ERRORS = 1000


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


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


def _issue(path: str, rule: str, message: str, value: Any = _MISSING) -> ValidationIssue:
    return ValidationIssue(
        path=path, rule=rule, message=_clip(message, _MESSAGE), value_excerpt=_excerpt(value)
    )
