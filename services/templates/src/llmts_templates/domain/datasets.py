"""Seed datasets (issue 18 #1): what a dataset is, how its column types are inferred and which limits it keeps.

A dataset is a user's table of rows (uploaded as CSV, JSONL or Parquet) that a job samples one row per item from, as
that item's variables. Rows are stored as they were read: CSV cells stay strings (a ``007`` zip code must stay
``007``; a template casts with ``| int`` where it needs a number), JSONL and Parquet values keep their JSON types.
Each column's inferred type is reported for the user — for CSV from what its cells look like — as one of
``integer``, ``number``, ``boolean``, ``string``, ``object``, ``array`` (``null`` when every cell is empty), with
``nullable`` when some cells are empty or null.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ColumnTypes", "DatasetError", "DatasetLimits", "infer_cell"]

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")
_BOOL = frozenset({"true", "false"})
# merging two kinds of one column: the wider wins
_WIDER = {("integer", "number"): "number", ("number", "integer"): "number"}


class DatasetError(ValueError):
    """A file that cannot become a dataset; ``line`` (1-based, of the file) when one line is to blame."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line is not None else self.message


@dataclass(frozen=True)
class DatasetLimits:
    max_bytes: int = 100 * 1024 * 1024
    max_rows: int = 1_000_000
    max_columns: int = 200
    max_cell_chars: int = 100_000
    max_datasets_per_user: int = 100


def infer_cell(value: Any, *, text: bool) -> str | None:
    """The kind of one cell (None for an empty one); ``text``: a CSV cell, judged by what it looks like."""
    if value is None:
        return None
    if text and isinstance(value, str):
        stripped = value.strip()
        if not stripped:
            return None
        if _INT.fullmatch(stripped):
            return "integer"
        if _FLOAT.fullmatch(stripped):
            return "number"
        return "boolean" if stripped.lower() in _BOOL else "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string"


@dataclass
class ColumnTypes:
    """Column names in first-seen order, and each one's merged kind and nullability, updated row by row."""

    text: bool
    max_columns: int
    names: list[str] = field(default_factory=list)
    kinds: dict[str, str | None] = field(default_factory=dict)
    nullable: dict[str, bool] = field(default_factory=dict)
    rows: int = 0

    def add(self, row: dict[str, Any], line: int | None = None) -> None:
        for name in row:
            if name not in self.kinds:
                if len(self.names) >= self.max_columns:
                    raise DatasetError(f"more than {self.max_columns} columns", line)
                self.names.append(name)
                self.kinds[name] = None
                self.nullable[name] = self.rows > 0  # absent from the rows before
        for name in self.names:
            kind = infer_cell(row.get(name), text=self.text)
            if kind is None:
                self.nullable[name] = True
                continue
            seen = self.kinds[name]
            if seen is None or seen == kind:
                self.kinds[name] = kind
            else:
                self.kinds[name] = _WIDER.get((seen, kind), "string")
        self.rows += 1

    def columns(self) -> list[dict[str, Any]]:
        return [
            {"name": n, "type": self.kinds[n] or "null", "nullable": self.nullable[n]} for n in self.names
        ]
