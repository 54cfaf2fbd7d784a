"""Structured diff between two template versions: prompts, schema, rules, model (and the other fields).

- prompts: per prompt, ``changed`` plus a unified diff of its lines (what a reviewer reads);
- schema and every other JSON value: a list of leaf changes ``{path, op, from, to}`` with JSONPath-like paths;
- rules: the rules that were added and removed (a rule is a whole object; order-insensitive, duplicates counted);
- model: one change per field.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, Field

from llmts_templates.domain.document import TemplateDocument

Op = Literal["added", "removed", "changed"]


class Change(BaseModel):
    path: str
    op: Op
    from_: Any = Field(default=None, alias="from", serialization_alias="from")
    to: Any = None

    model_config = {"populate_by_name": True, "serialize_by_alias": True}


class PromptDiff(BaseModel):
    changed: bool
    unified: list[str] = Field(default_factory=list)


class RulesDiff(BaseModel):
    changed: bool
    added: list[dict[str, Any]] = Field(default_factory=list)
    removed: list[dict[str, Any]] = Field(default_factory=list)
    mode: Change | None = None


class TemplateDiff(BaseModel):
    from_version: int
    to_version: int
    changed: bool
    prompts: dict[str, PromptDiff]
    schema_changes: list[Change] = Field(serialization_alias="schema")
    rules: RulesDiff
    model: list[Change]
    other: list[Change] = Field(description="Every other field: name, visibility, output, variables, tasks …")

    model_config = {"serialize_by_alias": True}


def _join(base: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else key


def json_changes(a: Any, b: Any, path: str = "") -> list[Change]:
    """Leaf-level differences between two JSON values (objects by key, arrays by position)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[Change] = []
        for key in sorted(set(a) | set(b), key=str):
            p = _join(path, str(key))
            if key not in a:
                out.append(Change(path=p, op="added", to=b[key]))
            elif key not in b:
                out.append(Change(path=p, op="removed", from_=a[key]))
            else:
                out.extend(json_changes(a[key], b[key], p))
        return out
    if isinstance(a, list) and isinstance(b, list):
        out = []
        for i in range(max(len(a), len(b))):
            p = _join(path, i)
            if i >= len(a):
                out.append(Change(path=p, op="added", to=b[i]))
            elif i >= len(b):
                out.append(Change(path=p, op="removed", from_=a[i]))
            else:
                out.extend(json_changes(a[i], b[i], p))
        return out
    if a == b and type(a) is type(b):
        return []
    return [Change(path=path or "$", op="changed", from_=a, to=b)]


def _prompt_diff(a: str, b: str, name: str, va: int, vb: int) -> PromptDiff:
    if a == b:
        return PromptDiff(changed=False)
    lines = difflib.unified_diff(
        a.splitlines(), b.splitlines(), fromfile=f"v{va}/{name}", tofile=f"v{vb}/{name}", lineterm=""
    )
    return PromptDiff(changed=True, unified=list(lines))


def _canon(rule: dict[str, Any]) -> str:
    return json.dumps(rule, sort_keys=True, ensure_ascii=False)


def _rules_diff(a: TemplateDocument, b: TemplateDocument) -> RulesDiff:
    ca = Counter(_canon(r) for r in a.validation.rules)
    cb = Counter(_canon(r) for r in b.validation.rules)
    added = [json.loads(k) for k in (cb - ca).elements()]
    removed = [json.loads(k) for k in (ca - cb).elements()]
    mode = None
    if a.validation.mode != b.validation.mode:
        mode = Change(path="validation.mode", op="changed", from_=a.validation.mode, to=b.validation.mode)
    return RulesDiff(changed=bool(added or removed or mode), added=added, removed=removed, mode=mode)


_SECTIONS = {"prompts", "schema", "validation", "model"}


def diff_documents(
    a: TemplateDocument, b: TemplateDocument, *, from_version: int, to_version: int
) -> TemplateDiff:
    prompts = {
        "system": _prompt_diff(a.prompts.system, b.prompts.system, "system", from_version, to_version),
        "user": _prompt_diff(a.prompts.user, b.prompts.user, "user", from_version, to_version),
    }
    schema = json_changes(a.json_schema or {}, b.json_schema or {}, "schema")
    if (a.json_schema is None) != (b.json_schema is None):
        schema = [Change(path="schema", op="changed", from_=a.json_schema, to=b.json_schema)]
    rules = _rules_diff(a, b)
    model = json_changes(
        a.model.model_dump(mode="json") if a.model else None,
        b.model.model_dump(mode="json") if b.model else None,
        "model",
    )
    da, db = a.stored(), b.stored()
    other: list[Change] = []
    for key in da.keys() | db.keys():
        if key not in _SECTIONS:
            other.extend(json_changes(da.get(key), db.get(key), key))
    other.sort(key=lambda c: c.path)
    changed = bool(any(p.changed for p in prompts.values()) or schema or rules.changed or model or other)
    return TemplateDiff(
        from_version=from_version,
        to_version=to_version,
        changed=changed,
        prompts=prompts,
        schema_changes=schema,
        rules=rules,
        model=model,
        other=other,
    )
