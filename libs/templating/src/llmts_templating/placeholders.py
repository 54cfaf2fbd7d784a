"""Placeholder values from a JSON Schema, shared by the previews of the templates service and of the generator: what
a preview shows in place of a stage's output (a later stage's prompts render with the earlier stages' placeholders)
and the item the judge's messages are previewed with.

The first that applies: ``const``, ``examples[0]``, ``default``, ``enum[0]``, the first ``anyOf``/``oneOf``/``allOf``
branch, then by type — an object of its properties, a one-element array, ``"<name>"`` for a string (the property
name, so the rendered prompt shows where each field lands), the ``minimum`` (or 0) for numbers, ``false``, ``null``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MAX_DEPTH = 8
MAIN_STAGE = "main"


def schema_example(schema: Any, name: str = "value", depth: int = 0) -> Any:
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return f"<{name}>"
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    examples = schema.get("examples")
    if isinstance(examples, list) and examples:
        return examples[0]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf", "allOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            return schema_example(branches[0], name, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties") or {}
        return {key: schema_example(sub, key, depth + 1) for key, sub in props.items()}
    if kind == "array":
        return [schema_example(schema.get("items", {}), name, depth + 1)]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        return low if isinstance(low, int | float) and not isinstance(low, bool) else 0
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return f"<{name}>"


def stage_placeholders(
    main_schema: Any, output_format: str, stages: Iterable[tuple[str, Any]]
) -> dict[str, Any]:
    """``main`` (the top-level output; ``"<text>"`` for a text template) and each later stage's placeholder output,
    by stage name, from ``stages``' (name, schema) pairs."""
    main = schema_example(main_schema) if output_format == "json" else "<text>"
    return {MAIN_STAGE: main, **{name: schema_example(schema) for name, schema in stages}}
