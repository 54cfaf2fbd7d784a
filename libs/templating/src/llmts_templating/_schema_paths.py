"""Rules vs schema: rule paths naming properties the schema does not declare (warnings, not errors)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llmts_templating._paths import Step, parse_path
from llmts_templating._rules import CompiledRules, Rule
from llmts_templating._schema_regex import _bounded_search


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
