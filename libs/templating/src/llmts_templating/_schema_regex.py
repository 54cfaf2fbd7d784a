"""JSON Schema keywords with bounded regexes: ``pattern``, ``patternProperties`` and ``additionalProperties``
match through :mod:`llmts_templating.patterns` (RE2, or a timed fallback) instead of Python's ``re``."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

from jsonschema import ValidationError, validators  # type: ignore[import-untyped]

from llmts_templating._report import _EXCERPT, _clip
from llmts_templating.patterns import PatternError, PatternTimeoutError, compile_pattern


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
