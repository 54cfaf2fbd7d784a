"""Facts about a template's JSON Schema that decide how the provider is asked for structured output."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def is_strict_compatible(schema: Any, _depth: int = 0) -> bool:
    """True when the schema fits OpenAI-style ``strict: true`` structured output.

    Every object must list all its properties as required and forbid additional properties; otherwise the
    provider rejects a strict request, so the generator asks non-strictly and validates itself.
    """
    if _depth > 32:
        return False
    if isinstance(schema, bool) or schema is None:
        return True
    if not isinstance(schema, Mapping):
        return False
    types = schema.get("type")
    is_object = types == "object" or (isinstance(types, list) and "object" in types) or "properties" in schema
    if is_object:
        props = schema.get("properties") or {}
        if schema.get("additionalProperties", True) is not False:
            return False
        if set(schema.get("required") or []) != set(props):
            return False
        if not all(is_strict_compatible(p, _depth + 1) for p in props.values()):
            return False
    for key in ("items",):
        if key in schema and not is_strict_compatible(schema[key], _depth + 1):
            return False
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key) or []:
            if not is_strict_compatible(sub, _depth + 1):
                return False
    for sub in (schema.get("$defs") or schema.get("definitions") or {}).values():
        if not is_strict_compatible(sub, _depth + 1):
            return False
    return True
