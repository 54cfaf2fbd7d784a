"""Deterministic-but-varied JSON Schema instance generator used by the fake providers.

``generate_instance(schema, seed=…, counter=…)`` returns a value valid against ``schema`` for the subset of JSON
Schema that structured-output templates use: type (incl. lists), enum, const, $ref/$defs, allOf/anyOf/oneOf,
objects (properties, required, additionalProperties, min/maxProperties), arrays (items, prefixItems, min/maxItems,
uniqueItems), strings (min/maxLength, simple regex ``pattern``, formats date/date-time/time/email/uri/uuid/
hostname/ipv4/ipv6), numbers (minimum/maximum, exclusive bounds, multipleOf), booleans and null. Consecutive
``counter`` values give different instances. Kept cheap: it sits on the fakes' hot path.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from datetime import date, datetime, timedelta
from typing import Any

__all__ = ["broken_variant", "generate_from_pattern", "generate_instance"]

WORDS = [
    "alpha",
    "bravo",
    "cedar",
    "delta",
    "ember",
    "falcon",
    "garnet",
    "harbor",
    "iris",
    "jasper",
    "kettle",
    "lumen",
    "meadow",
    "nectar",
    "orbit",
    "pixel",
    "quartz",
    "river",
    "sierra",
    "timber",
    "umbra",
    "velvet",
    "willow",
    "xenon",
    "yonder",
    "zephyr",
    "amber",
    "basil",
    "coral",
    "dune",
    "echo",
    "fjord",
    "grove",
    "haze",
    "island",
    "juniper",
    "kelp",
    "lotus",
    "maple",
    "north",
    "ocean",
    "pine",
    "quill",
    "reef",
    "sage",
    "tide",
    "upland",
    "vista",
    "wave",
    "yarrow",
    "zinc",
]

_MAX_DEPTH = 8


def generate_instance(schema: Any, *, seed: int = 0, counter: int = 0) -> Any:
    rng = random.Random(seed * 1_000_003 + counter)
    return _Gen(schema, rng, counter).value(schema, 0, "")


class _Gen:
    def __init__(self, root: Any, rng: random.Random, counter: int) -> None:
        self.root = root
        self.rng = rng
        self.counter = counter

    # --- dispatch ---------------------------------------------------------------------------------------
    def value(self, schema: Any, depth: int, key: str) -> Any:
        if schema is True or schema is None or schema == {}:
            return self.string({}, key)
        if schema is False:
            return None
        if not isinstance(schema, dict):
            return None
        if "$ref" in schema:
            return self.value(self.resolve(schema["$ref"]), depth + 1, key)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return self.rng.choice(schema["enum"])
        if "allOf" in schema:
            return self.value(self.merge_all_of(schema), depth + 1, key)
        for comb in ("oneOf", "anyOf"):
            if schema.get(comb):
                branches = [b for b in schema[comb] if not (isinstance(b, dict) and b.get("type") == "null")]
                branch = self.rng.choice(branches or schema[comb])
                base = {k: v for k, v in schema.items() if k != comb}
                if isinstance(branch, dict) and "$ref" in branch:
                    branch = self.resolve(branch["$ref"])
                merged = {**base, **branch} if isinstance(branch, dict) else branch
                return self.value(merged, depth + 1, key)
        typ = schema.get("type")
        if isinstance(typ, list):
            non_null = [t for t in typ if t != "null"]
            typ = non_null[0] if non_null else "null"
        if typ is None:
            if "properties" in schema or "required" in schema:
                typ = "object"
            elif "items" in schema or "prefixItems" in schema:
                typ = "array"
            elif any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
                typ = "number"
            else:
                typ = "string"
        if typ == "object":
            return self.obj(schema, depth)
        if typ == "array":
            return self.array(schema, depth, key)
        if typ == "integer":
            return self.integer(schema)
        if typ == "number":
            return self.number(schema)
        if typ == "boolean":
            return (self.counter + self.rng.randint(0, 1)) % 2 == 0
        if typ == "null":
            return None
        return self.string(schema, key)

    def resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            return {}
        node: Any = self.root
        for part in ref.lstrip("#").strip("/").split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return node

    def merge_all_of(self, schema: dict[str, Any]) -> dict[str, Any]:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for sub in schema["allOf"]:
            if isinstance(sub, dict) and "$ref" in sub:
                sub = self.resolve(sub["$ref"])
            if not isinstance(sub, dict):
                continue
            for k, v in sub.items():
                if k == "properties":
                    merged["properties"] = {**merged.get("properties", {}), **v}
                elif k == "required":
                    merged["required"] = sorted(set(merged.get("required", [])) | set(v))
                else:
                    merged.setdefault(k, v)
        return merged

    # --- containers -------------------------------------------------------------------------------------
    def obj(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties") or {}
        required = list(schema.get("required") or [])
        out: dict[str, Any] = {}
        deep = depth >= _MAX_DEPTH
        for name, sub in props.items():
            if deep and name not in required:
                continue
            out[name] = self.value(sub, depth + 1, name)
        for name in required:
            if name not in out:
                extra = schema.get("additionalProperties")
                out[name] = self.value(extra if isinstance(extra, dict) else {}, depth + 1, name)
        min_props = int(schema.get("minProperties") or 0)
        extra_schema = schema.get("additionalProperties", True)
        i = 0
        while len(out) < min_props and extra_schema is not False:
            out[f"extra_{i}"] = self.value(
                extra_schema if isinstance(extra_schema, dict) else {}, depth + 1, ""
            )
            i += 1
        max_props = schema.get("maxProperties")
        if isinstance(max_props, int) and len(out) > max_props:
            keep = [k for k in out if k in required][:max_props]
            keep += [k for k in out if k not in keep][: max_props - len(keep)]
            out = {k: out[k] for k in keep}
        return out

    def array(self, schema: dict[str, Any], depth: int, key: str) -> list[Any]:
        lo = int(schema.get("minItems") or 0)
        hi_raw = schema.get("maxItems")
        hi = int(hi_raw) if isinstance(hi_raw, int) else max(lo, 3)
        if depth >= _MAX_DEPTH:
            n = lo
        else:
            n = self.rng.randint(max(lo, 1 if hi >= 1 else 0), max(lo, min(hi, lo + 3, hi)))
        prefix = schema.get("prefixItems") or (
            schema["items"] if isinstance(schema.get("items"), list) else []
        )
        items = schema.get("items") if isinstance(schema.get("items"), dict | bool) else {}
        unique = bool(schema.get("uniqueItems"))
        out: list[Any] = []
        seen: set[str] = set()
        attempts = 0
        while len(out) < n and attempts < n * 8 + 8:
            attempts += 1
            idx = len(out)
            sub = prefix[idx] if idx < len(prefix) else items
            self.counter += 1  # vary sibling elements
            v = self.value(sub, depth + 1, key)
            if unique:
                marker = json.dumps(v, sort_keys=True)
                if marker in seen:
                    continue
                seen.add(marker)
            out.append(v)
        return out

    # --- scalars ----------------------------------------------------------------------------------------
    def integer(self, schema: dict[str, Any]) -> int:
        lo, hi = self._bounds(schema, integer=True)
        mult = schema.get("multipleOf")
        if isinstance(mult, int) and mult > 0:
            kmin = -(-lo // mult)
            kmax = hi // mult
            if kmin <= kmax:
                return self.rng.randint(kmin, kmax) * mult
        return self.rng.randint(int(lo), int(hi))

    def number(self, schema: dict[str, Any]) -> float | int:
        lo, hi = self._bounds(schema, integer=False)
        mult = schema.get("multipleOf")
        if isinstance(mult, int | float) and mult > 0:
            import math

            kmin = math.ceil(lo / mult)
            kmax = math.floor(hi / mult)
            if kmin <= kmax:
                k = self.rng.randint(kmin, kmax)
                return int(k * mult) if float(mult).is_integer() else round(k * mult, 10)
        v = round(self.rng.uniform(lo, hi), 2)
        if v < lo or v > hi or _excl_hit(schema, v):
            v = (lo + hi) / 2
        return v

    def _bounds(self, schema: dict[str, Any], *, integer: bool) -> tuple[Any, Any]:
        step = 1 if integer else 0.01
        lo: Any = None
        hi: Any = None
        if isinstance(schema.get("minimum"), int | float):
            lo = schema["minimum"]
        if isinstance(schema.get("exclusiveMinimum"), int | float) and not isinstance(
            schema["exclusiveMinimum"], bool
        ):
            lo = (
                schema["exclusiveMinimum"] + step
                if lo is None
                else max(lo, schema["exclusiveMinimum"] + step)
            )
        elif schema.get("exclusiveMinimum") is True and lo is not None:
            lo = lo + step
        if isinstance(schema.get("maximum"), int | float):
            hi = schema["maximum"]
        if isinstance(schema.get("exclusiveMaximum"), int | float) and not isinstance(
            schema["exclusiveMaximum"], bool
        ):
            hi = (
                schema["exclusiveMaximum"] - step
                if hi is None
                else min(hi, schema["exclusiveMaximum"] - step)
            )
        elif schema.get("exclusiveMaximum") is True and hi is not None:
            hi = hi - step
        if lo is None and hi is None:
            lo, hi = 0, 100
        elif lo is None:
            lo = hi - 100
        elif hi is None:
            hi = lo + 100
        if integer:
            import math

            lo, hi = math.ceil(lo), math.floor(hi)
        if lo > hi:
            hi = lo
        return lo, hi

    def string(self, schema: dict[str, Any], key: str) -> str:
        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS:
            return _FORMATS[fmt](self.rng, self.counter)
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            s = generate_from_pattern(pattern, self.rng)
            if s is not None:
                return s
        lo = int(schema.get("minLength") or 0)
        hi_raw = schema.get("maxLength")
        hi = int(hi_raw) if isinstance(hi_raw, int) else None
        n_words = self.rng.randint(2, 6)
        words = [self.rng.choice(WORDS) for _ in range(n_words)]
        s = " ".join(words)
        s = f"{key.replace('_', ' ')} {s} {self.counter}".strip() if key else f"{s} {self.counter}"
        while len(s) < lo:
            s += " " + self.rng.choice(WORDS)
        if hi is not None and len(s) > hi:
            s = s[:hi].rstrip() or s[:hi]
            if len(s) < lo:
                s = s.ljust(lo, "x")[:hi]
        return s


def _excl_hit(schema: dict[str, Any], v: float) -> bool:
    em, eM = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    return (isinstance(em, int | float) and not isinstance(em, bool) and v <= em) or (
        isinstance(eM, int | float) and not isinstance(eM, bool) and v >= eM
    )


def _date(rng: random.Random, counter: int) -> str:
    return (date(2020, 1, 1) + timedelta(days=rng.randint(0, 2500) + counter)).isoformat()


def _datetime(rng: random.Random, counter: int) -> str:
    dt = datetime(2020, 1, 1) + timedelta(seconds=rng.randint(0, 200_000_000) + counter)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


_FORMATS: dict[str, Any] = {
    "date": _date,
    "date-time": _datetime,
    "time": lambda r, c: f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{(r.randint(0, 59) + c) % 60:02d}Z",
    "email": lambda r, c: f"{r.choice(WORDS)}.{c}@example.com",
    "idn-email": lambda r, c: f"{r.choice(WORDS)}.{c}@example.com",
    "uri": lambda r, c: f"https://example.com/{r.choice(WORDS)}/{c}",
    "url": lambda r, c: f"https://example.com/{r.choice(WORDS)}/{c}",
    "iri": lambda r, c: f"https://example.com/{r.choice(WORDS)}/{c}",
    "uri-reference": lambda r, c: f"/{r.choice(WORDS)}/{c}",
    "uuid": lambda r, c: str(uuid.UUID(int=r.getrandbits(128), version=4)),
    "hostname": lambda r, c: f"{r.choice(WORDS)}{c}.example.com",
    "ipv4": lambda r, c: f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{c % 256}",
    "ipv6": lambda r, c: f"2001:db8::{c % 65536:x}",
}


# --- a tiny regex-to-string generator for the simple patterns templates use --------------------------------
_CLASS_ESC = {
    "d": "0123456789",
    "w": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_",
    "s": " ",
}
_PRINTABLE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_"


class _PatternError(Exception):
    pass


def generate_from_pattern(pattern: str, rng: random.Random) -> str | None:
    """A string matching ``pattern`` (search semantics) for a simple regex subset, or None if unsupported."""
    for _ in range(4):
        try:
            node, pos = _parse_alt(pattern, 0)
            if pos != len(pattern):
                return None
            s = _emit(node, rng)
        except (_PatternError, IndexError, ValueError):
            return None
        try:
            if re.search(pattern, s):
                return s
        except re.error:
            return None
    return None


# AST: ("alt", [seq...]) | ("seq", [atom...]) | ("rep", node, lo, hi) | ("set", chars) | ("lit", str)
def _parse_alt(p: str, i: int) -> tuple[Any, int]:
    branches = []
    seq, i = _parse_seq(p, i)
    branches.append(seq)
    while i < len(p) and p[i] == "|":
        seq, i = _parse_seq(p, i + 1)
        branches.append(seq)
    return ("alt", branches), i


def _parse_seq(p: str, i: int) -> tuple[Any, int]:
    items: list[Any] = []
    while i < len(p) and p[i] not in "|)":
        c = p[i]
        if c in "^$":
            i += 1
            continue
        if c == "(":
            i += 1
            if p.startswith("?:", i):
                i += 2
            elif p.startswith("?", i):
                raise _PatternError(p)
            atom, i = _parse_alt(p, i)
            if i >= len(p) or p[i] != ")":
                raise _PatternError(p)
            i += 1
        elif c == "[":
            atom, i = _parse_class(p, i + 1)
        elif c == "\\":
            esc = p[i + 1]
            atom = ("set", _CLASS_ESC[esc]) if esc in _CLASS_ESC else ("lit", esc)
            i += 2
        elif c == ".":
            atom = ("set", _PRINTABLE)
            i += 1
        else:
            atom = ("lit", c)
            i += 1
        atom, i = _parse_quant(p, i, atom)
        items.append(atom)
    return ("seq", items), i


def _parse_class(p: str, i: int) -> tuple[Any, int]:
    negate = p[i] == "^"
    if negate:
        i += 1
    chars: list[str] = []
    first = True
    while i < len(p) and (p[i] != "]" or first):
        first = False
        c = p[i]
        if c == "\\":
            esc = p[i + 1]
            chars.extend(_CLASS_ESC.get(esc, esc))
            i += 2
            continue
        if i + 2 < len(p) and p[i + 1] == "-" and p[i + 2] != "]":
            chars.extend(chr(x) for x in range(ord(c), ord(p[i + 2]) + 1))
            i += 3
            continue
        chars.append(c)
        i += 1
    if i >= len(p):
        raise _PatternError(p)
    pool = "".join(ch for ch in _PRINTABLE if ch not in chars) if negate else "".join(dict.fromkeys(chars))
    if not pool:
        raise _PatternError(p)
    return ("set", pool), i + 1


def _parse_quant(p: str, i: int, atom: Any) -> tuple[Any, int]:
    if i >= len(p):
        return atom, i
    c = p[i]
    lo, hi = None, None
    if c == "?":
        lo, hi, i = 0, 1, i + 1
    elif c == "*":
        lo, hi, i = 0, 3, i + 1
    elif c == "+":
        lo, hi, i = 1, 4, i + 1
    elif c == "{":
        end = p.index("}", i)
        body = p[i + 1 : end]
        if "," in body:
            a, _, b = body.partition(",")
            lo = int(a or 0)
            hi = int(b) if b.strip() else lo + 3
        else:
            lo = hi = int(body)
        i = end + 1
    else:
        return atom, i
    if i < len(p) and p[i] in "?+":
        i += 1  # lazy / possessive: same strings
    return ("rep", atom, lo, hi), i


def _emit(node: Any, rng: random.Random) -> str:
    kind = node[0]
    if kind == "alt":
        return _emit(rng.choice(node[1]), rng)
    if kind == "seq":
        return "".join(_emit(n, rng) for n in node[1])
    if kind == "rep":
        return "".join(_emit(node[1], rng) for _ in range(rng.randint(node[2], node[3])))
    if kind == "set":
        return rng.choice(node[1])
    return str(node[1])


# --- deliberately wrong output for fault injection ---------------------------------------------------------
def broken_variant(instance: Any, schema: Any, rng: random.Random) -> str:
    """Either syntactically broken JSON or JSON that violates the schema."""
    text = json.dumps(instance, ensure_ascii=False)
    choice = rng.randint(0, 2)
    if choice == 0 or not isinstance(instance, dict) or not instance:
        return text[: max(1, len(text) // 2)]  # truncated → not JSON
    bad = dict(instance)
    required = [k for k in (schema.get("required") or []) if k in bad] if isinstance(schema, dict) else []
    if choice == 1 and required:
        bad.pop(rng.choice(required))  # missing required property
    else:
        key = next(iter(bad))
        bad[key] = {"unexpected": [1, 2, 3]} if not isinstance(bad[key], dict) else "not-an-object"
    return json.dumps(bad, ensure_ascii=False)
