"""Item cards for the PDF: an item becomes a few pre-laid-out lines (pure layout, no drawing).

A card is a bold heading (``#n`` and the item's first text field, the "title") then one row per remaining
top-level field: the label in a bold column sized to the item's labels, the value wrapped beside it. Values
are compact: a list of scalars is joined with ``, ``; a nested object is one run of ``key: value`` pairs
joined with `` · `` (deeper keys dotted); a list of objects gives one such run per element, each on its own
line; null and empty containers show as ``—``. Every text goes through :func:`visible_controls`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._values import scalar_text, visible_controls

SIZE = 9.0
HEAD_SIZE = 10.0
NOTE_SIZE = 7.5
LEADING = 12.0
GAP = 7.0
"""Space above a card (its separator line sits in the middle of it)."""
MAX_ADVANCE = 2.1
"""No glyph of DejaVu Sans (Bold) is wider than 2.02 em: a text of n characters is at most n × 2.1 em wide."""
_LABEL_SHARE = 0.3
_TITLE_MAX = 160
_EMPTY = "—"

Run = tuple[float, bool, float, str]
"""(x, bold, font size, text) — one piece of text on a line."""
Line = tuple[Run, ...]
Width = Callable[[str, bool, float], float]
"""Width of a text in points: (text, bold, size) → points."""


class Wrapper:
    """Greedy word wrap by glyph widths (reportlab applies no kerning, so widths add up)."""

    def __init__(self, width: Width) -> None:
        self.width = width
        self._label_w: dict[str, float] = {}
        self._word_w: dict[str, float] = {}

    def label_width(self, label: str) -> float:
        w = self._label_w.get(label)
        if w is None:
            if len(self._label_w) > 4096:
                self._label_w.clear()
            w = self._label_w[label] = self.width(label, True, SIZE)
        return w

    def lines(self, text: str, limit: float, *, bold: bool = False, size: float = SIZE) -> list[str]:
        """``text`` cut into lines at most ``limit`` points wide (a word wider than a line is cut)."""
        sw = self.width
        out: list[str] = []
        bound = size * MAX_ADVANCE
        for para in text.replace("\t", "    ").split("\n"):
            if len(para) * bound <= limit or sw(para, bold, size) <= limit:
                out.append(para)
                continue
            space = sw(" ", bold, size)
            line, line_w = "", 0.0
            words = para.split(" ")
            if not bold and size == SIZE:  # value text: words recur, their widths are cached
                cache = self._word_w
                if len(cache) > 65_536:
                    cache.clear()
                widths = []
                for word in words:
                    w = cache.get(word)
                    if w is None:
                        w = cache[word] = sw(word, False, SIZE)
                    widths.append(w)
            else:
                widths = [sw(word, bold, size) for word in words]
            for word, w in zip(words, widths, strict=True):
                if line and line_w + space + w <= limit:
                    line, line_w = line + " " + word, line_w + space + w
                    continue
                if line:
                    out.append(line)
                while w > limit and len(word) > 1:
                    cut = self._fit(word, limit, bold, size)
                    out.append(word[:cut])
                    word = word[cut:]
                    w = sw(word, bold, size)
                line, line_w = word, w
            out.append(line)
        return out

    def _fit(self, word: str, limit: float, bold: bool, size: float) -> int:
        lo, hi = 1, len(word)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.width(word[:mid], bold, size) <= limit:
                lo = mid
            else:
                hi = mid - 1
        return lo


def _flat(value: Any) -> str:
    """A value as one compact run of text."""
    if value.__class__ is str:
        return value
    if value is None:
        return _EMPTY
    if isinstance(value, dict):
        return " · ".join(_pairs(value, "")) if value else _EMPTY
    if isinstance(value, list | tuple):
        if not value:
            return _EMPTY
        return ("; " if any(isinstance(v, dict | list | tuple) for v in value) else ", ").join(
            map(_flat, value)
        )
    return scalar_text(value)


def _pairs(data: dict[str, Any], prefix: str) -> list[str]:
    out: list[str] = []
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.extend(_pairs(value, f"{prefix}{key}."))
        else:
            out.append(f"{prefix}{key}: {_flat(value)}")
    return out


def _paragraphs(value: Any) -> list[str]:
    """The value of one field: a list of objects gives one paragraph per element."""
    if isinstance(value, list | tuple) and value and all(isinstance(v, dict) for v in value):
        return [_flat(v) for v in value]
    return [_flat(value)]


def _title(data: dict[str, Any]) -> str | None:
    """The key of the first top-level text field short enough to head the card."""
    for key, value in data.items():
        if value.__class__ is str and value.strip() and len(value) <= _TITLE_MAX:
            return str(key)
    return None


def card(wrap: Wrapper, number: int, data: Any, width: float, *, note: str | None = None) -> list[Line]:
    """The lines of one item's card (``data`` a dict, a str for text templates, or any JSON value), then
    ``note`` (the item's provenance line) in small type when given."""
    lines = _card(wrap, number, data, width)
    if note is not None:
        lines.extend(
            ((0.0, False, NOTE_SIZE, t),) for t in wrap.lines(visible_controls(note), width, size=NOTE_SIZE)
        )
    return lines


def _card(wrap: Wrapper, number: int, data: Any, width: float) -> list[Line]:
    head = f"#{number}"
    if not isinstance(data, dict):
        text = data if data.__class__ is str else _flat(data)
        lines: list[Line] = [((0.0, True, HEAD_SIZE, head),)]
        lines.extend(((0.0, False, SIZE, t),) for t in wrap.lines(visible_controls(text), width))
        return lines
    title_key = _title(data)
    head_x = wrap.width(head + "  ", True, HEAD_SIZE)
    if title_key is None:
        lines = [((0.0, True, HEAD_SIZE, head),)]
    else:
        title = wrap.lines(visible_controls(data[title_key]), width - head_x, bold=True, size=HEAD_SIZE)
        lines = [((0.0, True, HEAD_SIZE, head), (head_x, True, HEAD_SIZE, title[0]))]
        lines.extend(((head_x, True, HEAD_SIZE, t),) for t in title[1:])
    fields = [(visible_controls(str(k)), v) for k, v in data.items() if k != title_key]
    label_w = min(max((wrap.label_width(lb) for lb, _ in fields), default=0.0) + 8.0, width * _LABEL_SHARE)
    value_w = width - label_w
    for label, value in fields:
        label_lines = [label]
        if wrap.label_width(label) > label_w - 8.0:  # a long label wraps in its column
            label_lines = wrap.lines(label, label_w - 8.0, bold=True)
        value_lines: list[str] = []
        for para in _paragraphs(value):
            value_lines.extend(wrap.lines(visible_controls(para), value_w))
        for i in range(max(len(label_lines), len(value_lines))):
            runs: list[Run] = []
            if i < len(label_lines):
                runs.append((0.0, True, SIZE, label_lines[i]))
            if i < len(value_lines) and value_lines[i]:
                runs.append((label_w, False, SIZE, value_lines[i]))
            lines.append(tuple(runs))
    return lines
