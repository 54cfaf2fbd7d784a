"""Column plans: how a (nested) item becomes one flat row.

A plan is built once per export from the template's JSON Schema: the leaves of nested objects become
dotted columns in the schema's property order. When every object in the schema is closed
(``additionalProperties: false`` — what strict structured-output schemas look like) the plan is complete
and a writer needs a single pass over the items. Otherwise :meth:`Plan.discover` walks the items once
more (keys only, nothing kept but the plan) and appends the keys the schema does not name, in
first-seen order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ._model import ExportItem, SchemaDriftError
from ._values import FORMULA_PREFIXES

PLAIN_TYPES: frozenset[type] = frozenset({int, float, bool, type(None)})
"""Values an extractor with a ``cell`` converter passes through untouched (by default)."""
SCALAR_KINDS = frozenset({"string", "integer", "number", "boolean", "datetime", "date"})
_MAX_DEPTH = 16


class _Entry:
    __slots__ = ("child", "col", "key", "schema_leaf")

    def __init__(self, key: str, child: _Node | None, col: int | None, *, schema_leaf: bool) -> None:
        self.key = key
        self.child = child
        self.col = col
        self.schema_leaf = schema_leaf


class _Node:
    __slots__ = ("by_key", "closed", "entries", "fast", "keys")

    def __init__(self, *, closed: bool) -> None:
        self.entries: list[_Entry] = []
        self.by_key: dict[str, _Entry] = {}
        self.keys: frozenset[str] = frozenset()
        self.closed = closed
        self.fast: tuple[tuple[str, _Node | None, int | None], ...] = ()

    def add(self, entry: _Entry) -> None:
        self.entries.append(entry)
        self.by_key[entry.key] = entry
        self.keys = frozenset(self.by_key)
        self.refresh()

    def refresh(self) -> None:
        self.fast = tuple((e.key, e.child, e.col) for e in self.entries)


class Column:
    __slots__ = ("kind", "name", "path")

    def __init__(self, path: tuple[str, ...], kind: str) -> None:
        self.path = path
        self.name = ".".join(path)
        self.kind = kind

    def __repr__(self) -> str:
        return f"Column({self.name!r}, {self.kind!r})"


class Plan:
    """Columns of a flattened item plus a fast extractor."""

    def __init__(self) -> None:
        self.columns: list[Column] = []
        self.root = _Node(closed=False)
        self.nested = False
        """Some column lives below the top level (so items are not flat)."""
        self.saw_container = False
        """:meth:`discover` met a list/dict stored in a single cell."""
        self.discovered = False
        self.types: list[set[type]] = []
        """Per column, the Python types met by :meth:`discover` (when ``track_types``)."""
        self.int_range: list[tuple[int, int]] = []
        self.expand = True
        """Nested objects become dotted columns; ``False``: an object is the value of its top-level column."""

    # ---------------------------------------------------------------- building
    @classmethod
    def from_schema(cls, schema: dict[str, Any] | None, *, expand: bool = True) -> Plan:
        """The plan the schema gives; ``expand=False``: top-level columns only (objects are values)."""
        plan = cls()
        plan.expand = expand
        root = _resolve(schema, schema, 0) if isinstance(schema, dict) else {}
        if _is_object(root):
            plan.root = plan._node_from_schema(root, schema or {}, (), 0)
        return plan

    def _new_column(self, path: tuple[str, ...], kind: str) -> int:
        self.columns.append(Column(path, kind))
        self.types.append(set())
        self.int_range.append((0, 0))
        if len(path) > 1:
            self.nested = True
        return len(self.columns) - 1

    def _node_from_schema(
        self, schema: dict[str, Any], root: dict[str, Any], prefix: tuple[str, ...], depth: int
    ) -> _Node:
        props = schema.get("properties")
        has_props = isinstance(props, dict) and bool(props)
        closed = (
            schema.get("additionalProperties") is False
            and not schema.get("patternProperties")
            and (has_props or "properties" in schema)
        )
        node = _Node(closed=closed)
        if not isinstance(props, dict):
            return node
        for key, sub in props.items():
            key = str(key)
            resolved = _resolve(sub, root, depth + 1) if isinstance(sub, dict) else {}
            path = (*prefix, key)
            if _is_object(resolved) and depth < _MAX_DEPTH and self.expand:
                child = self._node_from_schema(resolved, root, path, depth + 1)
                node.entries.append(_Entry(key, child, None, schema_leaf=False))
                self.nested = True
            else:
                col = self._new_column(path, _kind(resolved))
                node.entries.append(_Entry(key, None, col, schema_leaf=True))
        node.by_key = {e.key: e for e in node.entries}
        node.keys = frozenset(node.by_key)
        node.refresh()
        return node

    @property
    def closed(self) -> bool:
        """Every object node is closed: the schema alone names every column."""
        stack = [self.root]
        while stack:
            node = stack.pop()
            if not node.closed:
                return False
            stack.extend(e.child for e in node.entries if e.child is not None)
        return True

    @property
    def complete(self) -> bool:
        """No discovery pass is needed (the schema is closed, or a pass already ran)."""
        return self.discovered or self.closed

    def is_flat(self) -> bool:
        """Every value is a scalar (valid once :attr:`complete`)."""
        if self.nested or self.saw_container:
            return False
        return self.discovered or all(c.kind in SCALAR_KINDS for c in self.columns)

    # ---------------------------------------------------------------- discovery
    def discover(self, items: Iterable[ExportItem], *, track_types: bool = False) -> None:
        """One pass over the items adding columns for keys the schema does not name."""
        root = self.root
        for item in items:
            data = item.data
            if data.__class__ is not dict:
                data = {"value": data}
            self._discover(root, data, (), track_types)
        self.discovered = True

    def _discover(self, node: _Node, data: dict[str, Any], prefix: tuple[str, ...], track: bool) -> None:
        by_key = node.by_key
        for key, value in data.items():
            entry = by_key.get(key)
            if entry is None:
                entry = _Entry(str(key), None, None, schema_leaf=False)
                node.add(entry)
            is_dict = value.__class__ is dict
            if is_dict and (entry.child is not None or not entry.schema_leaf) and self.expand:
                if entry.child is None:
                    entry.child = _Node(closed=False)
                    node.refresh()
                    self.nested = True
                self._discover(entry.child, value, (*prefix, entry.key), track)
                continue
            if value is None and entry.col is None:
                if entry.child is None:  # a key only ever null still gets its column
                    entry.col = self._new_column((*prefix, entry.key), "any")
                    node.refresh()
                continue
            if entry.col is None:
                entry.col = self._new_column((*prefix, entry.key), "any")
                node.refresh()
            if is_dict or isinstance(value, list | tuple):
                self.saw_container = True
            if track:
                col = entry.col
                self.types[col].add(value.__class__)
                if value.__class__ is int:
                    lo, hi = self.int_range[col]
                    if value < lo or value > hi:
                        self.int_range[col] = (min(lo, value), max(hi, value))

    # ---------------------------------------------------------------- extraction
    def extractor(
        self,
        cell: Callable[[Any], Any] | None = None,
        formula: frozenset[str] = FORMULA_PREFIXES,
        plain: frozenset[type] = PLAIN_TYPES,
    ) -> _Extractor:
        """Compiled ``data -> row``. With ``cell`` (CSV), each value is converted inline: a str that
        starts with a character of ``formula`` gets a ``'`` prefix, the classes in ``plain``
        (``int``/``float``/``bool``/``None`` by default) pass, anything else goes through ``cell``."""
        return _Extractor(self, cell, formula, plain)


class _Extractor:
    """``extract(data)`` → list of raw values, one per column (``None`` where absent).

    The plan is compiled into straight-line Python (like ``dataclasses`` does for ``__init__``): one
    ``dict.get`` per column, one key-set check per object, no per-column loop or recursion. Keys enter
    the generated source only as ``repr()`` string literals, so no key can inject code.
    :func:`_fill` is the interpreted equivalent (tests check they agree).
    """

    __slots__ = ("_fn",)

    def __init__(
        self,
        plan: Plan,
        cell: Callable[[Any], Any] | None = None,
        formula: frozenset[str] = FORMULA_PREFIXES,
        plain: frozenset[type] = PLAIN_TYPES,
    ) -> None:
        self._fn = _compile(plan.root, len(plan.columns), cell, formula, plain)

    def __call__(self, data: Any) -> list[Any]:
        return self._fn(data if data.__class__ is dict else {"value": data})


class _Source:
    """The generated source of ``extract(d0)`` and ``slow(d0)``, and the constants it refers to."""

    def __init__(
        self, cell: Callable[[Any], Any] | None, formula: frozenset[str], plain: frozenset[type] = PLAIN_TYPES
    ) -> None:
        self.cell = cell
        self.counter = 0
        self.consts: dict[str, Any] = {
            "_drift": _drift,
            "_mismatch": _mismatch,
            "dict": dict,
            "str": str,
            "len": len,
            "KeyError": KeyError,
            "_cell": cell,
            "_PLAIN": plain,
            "_FORMULA": formula,
        }

    def leaf(self, out: list[str], var: str, pad: str) -> None:
        if self.cell is None:
            return
        out.append(f"{pad}if {var}.__class__ is not str:")
        out.append(f"{pad}    if {var}.__class__ not in _PLAIN: {var} = _cell({var})")
        out.append(f'{pad}elif {var}[:1] in _FORMULA: {var} = "\'" + {var}')

    def general(self, out: list[str], node: _Node, var: str, depth: int, pad: str) -> None:
        keys_name = f"K{self.counter}"
        self.counter += 1
        self.consts[keys_name] = node.keys
        out.append(f"{pad}if not {var}.keys() <= {keys_name}: _drift({var}, {keys_name})")
        out.append(f"{pad}g{depth} = {var}.get")
        for key, child, col in node.fast:
            lit = repr(key)
            if child is None:
                out.append(f"{pad}c{col} = g{depth}({lit})")
                self.leaf(out, f"c{col}", pad)
                continue
            sub = f"d{depth + 1}"
            out.append(f"{pad}{sub} = g{depth}({lit})")
            out.append(f"{pad}if {sub}.__class__ is dict:")
            self.general(out, child, sub, depth + 1, pad + "    ")
            if col is not None:
                out.append(f"{pad}    c{col} = None")
                out.append(f"{pad}else:")
                out.append(f"{pad}    c{col} = {sub}")
                self.leaf(out, f"c{col}", pad + "    ")
            else:
                out.append(f"{pad}else:")
                out.append(f"{pad}    if {sub} is not None: _mismatch({lit}, {sub})")
            out.extend(f"{pad}    c{c} = None" for c in _cols(child))

    def fast(self, out: list[str], node: _Node, var: str, depth: int, pad: str) -> None:
        out.append(f"{pad}if len({var}) != {len(node.fast)}: raise KeyError")
        for key, child, col in node.fast:
            lit = repr(key)
            if child is None:
                out.append(f"{pad}c{col} = {var}[{lit}]")
                self.leaf(out, f"c{col}", pad)
                continue
            sub = f"d{depth + 1}"
            out.append(f"{pad}{sub} = {var}[{lit}]")
            out.append(f"{pad}if {sub}.__class__ is not dict: raise KeyError")
            self.fast(out, child, sub, depth + 1, pad)
            if col is not None:
                out.append(f"{pad}c{col} = None")


def _compile(
    root: _Node,
    ncols: int,
    cell: Callable[[Any], Any] | None,
    formula: frozenset[str],
    plain: frozenset[type] = PLAIN_TYPES,
) -> Callable[[dict[str, Any]], list[Any]]:
    """Generate ``extract(d0)``: a fast path (subscripts, ``len`` checks) for items that have exactly the
    plan's keys with objects where the plan has objects — every item of a strict schema — and a general
    path (``dict.get``, key-set checks, ``None`` for absent values, :class:`SchemaDriftError`) that the
    fast one falls back to by raising ``KeyError``."""
    source = _Source(cell, formula, plain)
    ret = "return [" + ", ".join(f"c{i}" for i in range(ncols)) + "]"
    lines = ["def slow(d0):"]
    source.general(lines, root, "d0", 0, "    ")
    lines.append("    " + ret)
    lines.append("def extract(d0):")
    lines.append("    try:")
    source.fast(lines, root, "d0", 0, "        ")
    lines.append("        " + ret)
    lines.append("    except KeyError:")
    lines.append("        return slow(d0)")
    namespace: dict[str, Any] = {}
    code = compile("\n".join(lines), "<llmts_exporter plan>", "exec")
    exec(code, source.consts, namespace)  # noqa: S102 -- keys enter the source only as repr() literals
    source.consts["slow"] = namespace["slow"]
    fn: Callable[[dict[str, Any]], list[Any]] = namespace["extract"]
    return fn


def _cols(node: _Node) -> list[int]:
    out: list[int] = []
    for _key, child, col in node.fast:
        if col is not None:
            out.append(col)
        if child is not None:
            out.extend(_cols(child))
    return out


def _drift(data: dict[str, Any], keys: frozenset[str]) -> None:
    extra = sorted(str(k) for k in data.keys() - keys)
    raise SchemaDriftError(f"item has keys the schema does not allow: {', '.join(extra)[:200]}")


def _mismatch(key: str, value: Any) -> None:
    raise SchemaDriftError(f"item has a {type(value).__name__} where the schema has an object ({key})")


def fill_interpreted(plan: Plan, data: Any) -> list[Any]:
    """Reference (slow) extractor; see :class:`_Extractor`."""
    row: list[Any] = [None] * len(plan.columns)
    _fill(plan.root, data if data.__class__ is dict else {"value": data}, row)
    return row


def _fill(node: _Node, data: dict[str, Any], row: list[Any]) -> None:
    if not data.keys() <= node.keys:
        _drift(data, node.keys)
    for key, child, col in node.fast:
        value = data.get(key)
        if child is not None and value.__class__ is dict:
            _fill(child, value, row)
        elif col is not None:
            row[col] = value
        elif value is not None and child is not None:
            raise SchemaDriftError(
                f"item has a {type(value).__name__} where the schema has an object ({key})"
            )


# -------------------------------------------------------------------- JSON Schema helpers
def _resolve(schema: Any, root: Any, depth: int) -> dict[str, Any]:
    """Follow local ``$ref``s and unwrap nullable ``anyOf``/``oneOf``; merge ``allOf`` objects."""
    for _ in range(_MAX_DEPTH):
        if not isinstance(schema, dict):
            return {}
        ref = schema.get("$ref")
        if isinstance(ref, str):
            target = _pointer(root, ref)
            if target is None or depth > _MAX_DEPTH:
                return {}
            schema = target
            depth += 1
            continue
        for combinator in ("anyOf", "oneOf"):
            options = schema.get(combinator)
            if isinstance(options, list):
                real = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
                if len(real) == 1:
                    schema = real[0]
                    break
                return {}
        else:
            all_of = schema.get("allOf")
            if isinstance(all_of, list) and all_of:
                merged: dict[str, Any] = {"type": "object", "properties": {}}
                for part in all_of:
                    part = _resolve(part, root, depth + 1)
                    if not _is_object(part):
                        return {}
                    merged["properties"].update(part.get("properties") or {})
                    if part.get("additionalProperties") is False:
                        merged["additionalProperties"] = False
                return merged
            return schema
    return {}


def _pointer(root: Any, ref: str) -> Any:
    if not ref.startswith("#"):
        return None
    node = root
    for raw in ref[1:].split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _types(schema: dict[str, Any]) -> list[str]:
    t = schema.get("type")
    if isinstance(t, str):
        return [t]
    if isinstance(t, list):
        return [x for x in t if isinstance(x, str) and x != "null"]
    return []


def _is_object(schema: dict[str, Any]) -> bool:
    types = _types(schema)
    if types == ["object"]:
        return True
    return not types and isinstance(schema.get("properties"), dict)


def _kind(schema: dict[str, Any]) -> str:
    types = _types(schema)
    if len(types) != 1:
        if sorted(types) == ["integer", "number"]:
            return "number"
        return "any"
    t = types[0]
    if t == "string":
        fmt = schema.get("format")
        if fmt == "date-time":
            return "datetime"
        if fmt == "date":
            return "date"
        return "string"
    if t in ("integer", "number", "boolean", "array"):
        return t
    return "any"
