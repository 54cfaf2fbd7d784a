"""Rule paths: ``question``, ``meta.author``, ``options[].text``, ``options[0]``, ``$``, ``$.a.b``."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Literal

from llmts_templating._report import _MISSING

_SEGMENT = re.compile(r"^(?P<name>[^\[\]]*)(?P<idx>(?:\[\d*\])*)$")

_INDEX = re.compile(r"\[(\d*)\]")

_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Step = tuple[Literal["key", "each", "index"], str | int | None]


def parse_path(path: str) -> tuple[Step, ...]:
    """Steps of a rule path; ``$``, ``.`` or ``""`` is the item itself. Raises ValueError."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    if text.startswith("."):
        text = text[1:]
    if not text:
        return ()
    steps: list[Step] = []
    for position, part in enumerate(text.split(".")):
        match = _SEGMENT.match(part)
        if match is None:
            raise ValueError(f"invalid path segment {part!r} (use a.b, a[].b or a[0])")
        name, indexes = match["name"], match["idx"]
        if not name and (position > 0 or not indexes):
            raise ValueError(f"empty segment in path {path!r}")
        if name:
            steps.append(("key", name))
        for index in _INDEX.findall(indexes):
            steps.append(("each", None) if index == "" else ("index", int(index)))
    return tuple(steps)


def _path_text(steps: Sequence[Step]) -> str:
    out = ""
    for kind, arg in steps:
        if kind == "key":
            out += f".{arg}" if out else str(arg)
        elif kind == "each":
            out += "[]"
        else:
            out += f"[{arg}]"
    return out or "$"


def _key_path(base: str, key: str) -> str:
    return f"{base}.{key}" if _SIMPLE_KEY.match(key) else f"{base}[{json.dumps(key, ensure_ascii=False)}]"


def _resolve(value: Any, steps: Sequence[Step]) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = [("$", value)]
    for kind, arg in steps:
        following: list[tuple[str, Any]] = []
        for path, current in found:
            if kind == "key":
                assert isinstance(arg, str)
                child = current.get(arg, _MISSING) if isinstance(current, dict) else _MISSING
                following.append((_key_path(path, arg), child))
            elif kind == "each":
                if isinstance(current, list):
                    following.extend((f"{path}[{i}]", item) for i, item in enumerate(current))
            else:
                assert isinstance(arg, int)
                ok = isinstance(current, list) and arg < len(current)
                following.append((f"{path}[{arg}]", current[arg] if ok else _MISSING))
        found = following
    return found
