"""Value conversion and escaping shared by the writers."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from typing import Any

FORMULA_PREFIXES = frozenset("=+-@\t\r")
"""Cells starting with one of these are read as formulas by spreadsheets (OWASP CSV injection)."""

_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
"""Characters XML 1.0 cannot carry at all, not even as character references."""

_TERMINAL_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
"""Control characters that would act on a terminal (``cat export.txt``) or confuse a PDF text run."""


def neutralise(text: str) -> str:
    """Prefix ``'`` to a cell a spreadsheet would otherwise evaluate as a formula."""
    if text[:1] in FORMULA_PREFIXES:
        return "'" + text
    return text


def xml_clean(text: str) -> str:
    """Remove characters illegal in XML 1.0 (C0 controls other than tab/LF/CR, surrogates, U+FFFE/FFFF)."""
    if text.isprintable():  # fast path: printable strings hold none of them
        return text
    return _XML_ILLEGAL.sub("", text)


def visible_controls(text: str) -> str:
    """Show control characters as ``\\xNN`` (CRLF becomes LF; tab and LF stay) so plain-text output
    cannot drive a terminal or hide text behind a carriage return."""
    if text.isprintable():
        return text
    return _TERMINAL_CONTROL.sub(_escape_control, text.replace("\r\n", "\n"))


def _escape_control(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def _finite(value: Any) -> Any:
    """Replace NaN/±Infinity (which json.loads accepts but JSON cannot carry) by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _make_encoder(separators: tuple[str, str]) -> Callable[[Any], str]:
    """A JSON encoder without ``json.dumps``'s per-call set-up (~10x faster for small values).

    Strict JSON (NaN/Infinity raise), non-ASCII kept as is, unknown objects (datetime, ObjectId) as str.
    No circular-reference check: items come from JSON/BSON and cannot be circular.
    """
    item_sep, key_sep = separators
    c_make = getattr(json.encoder, "c_make_encoder", None)
    if c_make is not None:
        c_encode = c_make(
            None, str, json.encoder.encode_basestring, None, key_sep, item_sep, False, False, False
        )

        def encode(value: Any) -> str:
            return "".join(c_encode(value, 0))

        return encode
    encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=separators, default=str)
    return encoder.encode


_ENCODERS = {sep: _make_encoder(sep) for sep in ((", ", ": "), (",", ":"))}


def json_text(value: Any, *, separators: tuple[str, str] = (", ", ": ")) -> str:
    """Strict JSON text of ``value``: NaN/±Infinity become ``null``; non-ASCII kept as is."""
    encode = _ENCODERS[separators]
    try:
        return encode(value)
    except ValueError:
        return encode(_finite(value))


def scalar_text(value: Any) -> str:
    """Readable text of one value: strings as is, ``true``/``false``, empty for null, JSON for containers."""
    if value.__class__ is str:
        return value
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dict | list | tuple):
        return json_text(value)
    return str(value)


def is_scalar(value: Any) -> bool:
    return not isinstance(value, dict | list | tuple)


def outline(data: dict[str, Any], level: int = 0) -> Iterator[tuple[int, str, str | None]]:
    """Walk a nested item for the readable formats (pdf, txt, md, html fallback).

    Yields ``(level, label, text)``; ``text`` is ``None`` for a heading whose children follow one level
    deeper. Lists of scalars are joined with ``", "``; lists of objects become numbered sub-blocks.
    """
    for key, value in data.items():
        label = str(key)
        if isinstance(value, dict) and value:
            yield level, label, None
            yield from outline(value, level + 1)
        elif isinstance(value, list | tuple) and value:
            if all(is_scalar(v) for v in value):
                yield level, label, ", ".join(scalar_text(v) for v in value)
                continue
            yield level, label, None
            for n, element in enumerate(value, 1):
                if isinstance(element, dict) and element:
                    yield level + 1, f"[{n}]", None
                    yield from outline(element, level + 2)
                else:
                    yield level + 1, f"[{n}]", scalar_text(element)
        else:
            yield level, label, scalar_text(value)


def as_mapping(data: Any) -> dict[str, Any]:
    """A json-template item whose root is not an object is shown as ``{"value": data}``."""
    if isinstance(data, dict):
        return data
    return {"value": data}
