"""Breaking changes between two versions of a published JSON Schema (the check behind ``make schemas-check``).

A consumer written against the old schema must keep reading messages of the new one, and a consumer of the new
schema must still read old messages (topics are replayed). So, at any depth (properties, array items, map values,
the non-null branch of an optional), a change is **breaking** when:

- a property is removed;
- a property becomes required (a new required property, or an optional one made required): old messages lack it;
- a property that was required becomes optional: consumers relied on it being there;
- a value's JSON type changes (its set of types differs, ``null`` included);
- an enumeration narrows (a value of ``enum``/``const`` is no longer allowed, or a free value gets an enum).

Compatible: a new optional property, a widened enumeration (consumers ignore values they do not know), changed
descriptions, titles, examples and defaults. A breaking change needs a new ``VERSION`` of the message (a new file).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

_MAX_DEPTH = 32


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int = 0) -> Mapping[str, Any]:
    """``schema`` with a local ``$ref`` (``#/$defs/Name``) followed."""
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/") or depth > _MAX_DEPTH:
        return schema
    target: Any = root
    for part in ref[2:].split("/"):
        target = target.get(part, {}) if isinstance(target, Mapping) else {}
    return _resolve({**target, **{k: v for k, v in schema.items() if k != "$ref"}}, root, depth + 1)


def _branches(schema: Mapping[str, Any], root: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The alternatives of a value (``anyOf``/``oneOf`` flattened), each resolved."""
    resolved = _resolve(schema, root)
    alternatives = resolved.get("anyOf") or resolved.get("oneOf")
    if not alternatives:
        return [resolved]
    return [b for alt in alternatives for b in _branches(alt, root)]


def _types(branches: list[Mapping[str, Any]]) -> frozenset[str]:
    out: set[str] = set()
    for b in branches:
        declared = b.get("type")
        if isinstance(declared, str):
            out.add(declared)
        elif isinstance(declared, list):
            out.update(str(t) for t in declared)
        elif "const" in b or "enum" in b:
            values = [b["const"]] if "const" in b else list(b["enum"])
            out.update(_json_type(v) for v in values)
        elif b:
            out.add("any")
    return frozenset(out or {"any"})


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _enum(branches: list[Mapping[str, Any]]) -> set[str] | None:
    """The allowed non-null values as JSON text, or None when some branch allows any value of its type."""
    values: set[str] = set()
    for b in branches:
        if b.get("type") == "null":
            continue
        if "const" in b:
            values.add(repr(b["const"]))
        elif "enum" in b:
            values.update(repr(v) for v in b["enum"] if v is not None)
        else:
            return None
    return values


def _single(branches: list[Mapping[str, Any]], key: str) -> Mapping[str, Any] | None:
    found = [b for b in branches if key in b]
    return found[0] if len(found) == 1 else None


def breaking_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Every breaking change from ``old`` to ``new`` (both whole schemas), as ``"<path>: <what>"``."""
    return list(_compare(old, new, old, new, "$", 0))


def _compare(
    old: Mapping[str, Any], new: Mapping[str, Any], old_root: Any, new_root: Any, path: str, depth: int
) -> Iterator[str]:
    if depth > _MAX_DEPTH:
        return
    ob, nb = _branches(old, old_root), _branches(new, new_root)
    ot, nt = _types(ob), _types(nb)
    if ot != nt:
        yield f"{path}: type changed from {sorted(ot)} to {sorted(nt)}"
        return
    old_enum, new_enum = _enum(ob), _enum(nb)
    if new_enum is not None and (old_enum is None or not old_enum <= new_enum):
        lost = "any value" if old_enum is None else ", ".join(sorted(old_enum - new_enum))
        yield f"{path}: enumeration narrowed (no longer allowed: {lost})"
    oo, no = _single(ob, "properties"), _single(nb, "properties")
    if oo is not None and no is not None:
        yield from _compare_objects(oo, no, old_root, new_root, path, depth)
    for key, label in (("items", "[]"), ("additionalProperties", "{}")):
        oi, ni = _single(ob, key), _single(nb, key)
        if (
            oi is not None
            and ni is not None
            and isinstance(oi[key], Mapping)
            and isinstance(ni[key], Mapping)
        ):
            yield from _compare(oi[key], ni[key], old_root, new_root, f"{path}{label}", depth + 1)


def _compare_objects(
    old: Mapping[str, Any], new: Mapping[str, Any], old_root: Any, new_root: Any, path: str, depth: int
) -> Iterator[str]:
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_req, new_req = set(old.get("required", [])), set(new.get("required", []))
    for name in sorted(old_props):
        if name not in new_props:
            yield f"{path}.{name}: removed"
            continue
        if name in old_req and name not in new_req:
            yield f"{path}.{name}: no longer required"
        yield from _compare(old_props[name], new_props[name], old_root, new_root, f"{path}.{name}", depth + 1)
    for name in sorted(new_req - old_req):
        yield f"{path}.{name}: now required" if name in old_props else f"{path}.{name}: new required property"
