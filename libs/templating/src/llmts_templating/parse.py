"""Lenient parsing of model output before validation.

JSON: strip a BOM, ``<think>…</think>`` reasoning blocks, a Markdown code fence (```` ```json ````) and
surrounding prose (the first ``{…}``/``[…]`` that parses as a whole wins), then ``json.loads``.
Deliberately conservative: trailing commas, comments, single quotes, ``NaN`` are NOT repaired, so a
broken answer is reported (and can be repaired by the model) instead of silently guessed.

Text: strip surrounding whitespace (and a BOM); empty output is not ok.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["OutputFormat", "ParseResult", "parse_output"]

OutputFormat = Literal["json", "text"]

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_MAX_CANDIDATES = 64
_STRUCT = re.compile(r'[{}\[\]"]')
_STRING_END = re.compile(r'(?:[^"\\]|\\.)*"', re.DOTALL)
_DECODER = json.JSONDecoder(parse_constant=lambda name: _reject_constant(name))


class _NotJSONError(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NotJSONError(f"{name} is not valid JSON")


@dataclass(frozen=True, slots=True)
class ParseResult:
    ok: bool
    value: Any = None
    error: str | None = None


def _loads(text: str) -> Any:
    return _DECODER.decode(text)


def _balanced_end(text: str, start: int) -> int | None:
    """End (exclusive) of the bracketed region opening at ``start``, skipping JSON strings."""
    depth = 0
    pos = start
    while True:
        match = _STRUCT.search(text, pos)
        if match is None:
            return None
        char = match.group()
        if char == '"':
            string_end = _STRING_END.match(text, match.end())
            if string_end is None:
                return None
            pos = string_end.end()
            continue
        if char in "{[":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return match.end()
        pos = match.end()


def _first_balanced(text: str) -> tuple[bool, Any, str | None]:
    """The first bracketed region (``{…}`` or ``[…]``) that decodes as a whole.

    A region that is balanced but invalid is skipped as a whole (never searched for an inner fragment);
    an unbalanced one (truncated output) ends the search."""
    first_error: str | None = None
    pos = 0
    for _ in range(_MAX_CANDIDATES):
        starts = [i for i in (text.find("{", pos), text.find("[", pos)) if i >= 0]
        if not starts:
            break
        start = min(starts)
        end = _balanced_end(text, start)
        if end is None:
            return False, None, first_error or "unbalanced brackets: the JSON looks truncated"
        try:
            return True, _loads(text[start:end]), None
        except ValueError as exc:
            first_error = first_error or f"invalid JSON: {exc}"
            pos = end
    return False, None, first_error


def parse_output(text: str, output_format: OutputFormat) -> ParseResult:
    """Parse one model answer; never raises for string input."""
    cleaned = text.lstrip("\ufeff").strip()
    if output_format == "text":
        if not cleaned:
            return ParseResult(ok=False, error="empty output")
        return ParseResult(ok=True, value=cleaned)
    if not cleaned:
        return ParseResult(ok=False, error="empty output")
    try:
        return ParseResult(ok=True, value=_loads(cleaned))
    except ValueError:
        pass
    if "<think>" in cleaned.lower():
        cleaned = _THINK.sub("", cleaned).strip()
        try:
            return ParseResult(ok=True, value=_loads(cleaned))
        except ValueError:
            pass
    fences = _FENCE.findall(cleaned)
    # a ```json fence first, then any other fence, then the raw text
    ordered = [body for lang, body in fences if lang.lower() == "json"]
    ordered += [body for lang, body in fences if lang.lower() != "json"]
    if cleaned.startswith("```") and cleaned.endswith("```") and "\n" in cleaned:
        # the whole answer is one fence: take everything inside it (robust to ``` inside strings)
        ordered.insert(0, cleaned[cleaned.index("\n") + 1 : -3])
    first_error: str | None = None
    for body in ordered:
        try:
            return ParseResult(ok=True, value=_loads(body.strip()))
        except ValueError as exc:
            first_error = first_error or f"invalid JSON in code block: {exc}"
    for body in [*ordered, cleaned]:
        ok, value, error = _first_balanced(body)
        if ok:
            return ParseResult(ok=True, value=value)
        first_error = first_error or error
    return ParseResult(ok=False, error=first_error or "no JSON object or array found in the output")
