"""Nested data in the tabular formats (csv, xlsx, parquet): the ``nested`` export option.

* ``flatten`` (csv/xlsx default): nested objects become dotted columns (``price.amount``); arrays are JSON text.
* ``json``: one column per top-level key; an object or array is the JSON text of its value.
* ``explode``: one row per element of one array column (``explode_field``, a dotted column name; by
  default the first array column), with the item's index in a leading ``item`` column and the item's other
  columns repeated; an element object is flattened into ``<array>.<key>`` columns, a scalar element fills the
  ``<array>`` column; an item whose array is empty or missing gives one row with empty element columns.

The parquet default (no ``nested``) keeps real struct/list types; see ``parquet_writer``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from . import _provenance
from ._model import ExportItem, ExportMeta, ExportOptions, ItemsFactory
from ._plan import Column, Plan

ITEM_COLUMN = "item"


def column_plan(
    meta: ExportMeta, items: ItemsFactory, options: ExportOptions, *, track_types: bool = False
) -> Plan:
    """The plan of the json/flatten modes (and the item-level part of explode), discovered when needed."""
    plan = Plan.from_schema(meta.schema, expand=options.nested != "json")
    if track_types or not plan.complete:
        plan.discover(items(), track_types=track_types)
    return plan


class Exploded:
    """Header and rows of the ``explode`` mode (two passes at most: item columns, then element columns)."""

    def __init__(self, meta: ExportMeta, items: ItemsFactory, options: ExportOptions) -> None:
        self.items = items
        self.plan = Plan.from_schema(meta.schema)
        self.plan.discover(items(), track_types=True)
        self.extract = self.plan.extractor()
        self.at = _pick(self.plan, options.explode_field)
        self.sub = Plan()
        if self.at is not None:
            self.sub.discover(self.elements(), track_types=True)
        self.sub_extract = self.sub.extractor()
        self.provenance = _provenance.wanted(meta, options)
        """Whether each row ends with the item's ``_``-prefixed provenance columns."""
        if self.provenance:
            _provenance.check_names(c.name for c in self.columns())
        self.item_count = 0
        """Items read by the last :meth:`rows` pass (what the export reports; rows may be more)."""

    def elements(self) -> Iterator[ExportItem]:
        """Every element of the exploded array, as items (what the element columns are discovered from)."""
        at, extract = self.at, self.extract
        assert at is not None
        for item in self.items():
            value = extract(item.data)[at]
            if isinstance(value, list | tuple):
                for element in value:
                    yield ExportItem(item.index, element)

    def columns(self) -> list[Column]:
        """The data columns: ``item``, the item's columns before the array, the element's, the rest."""
        item = Column((ITEM_COLUMN,), "integer")
        cols = self.plan.columns
        if self.at is None:
            return [item, *cols]
        name = cols[self.at].path
        sub = [Column(name if c.path == ("value",) else (*name, *c.path), c.kind) for c in self.sub.columns]
        return [item, *cols[: self.at], *sub, *cols[self.at + 1 :]]

    def header(self) -> list[str]:
        """The column names of the file: :meth:`columns`, then the provenance columns when wanted."""
        names = [c.name for c in self.columns()]
        return [*names, *_provenance.COLUMNS] if self.provenance else names

    def rows(self) -> Iterator[list[Any]]:
        at, extract, sub_extract = self.at, self.extract, self.sub_extract
        empty = [None] * len(self.sub.columns)
        self.item_count = 0
        for item in self.items():
            self.item_count += 1
            row = extract(item.data)
            if self.provenance:
                row = [*row, *_provenance.flat_values(item)]
            if at is None:
                yield [item.index, *row]
                continue
            head, value, tail = row[:at], row[at], row[at + 1 :]
            if isinstance(value, list | tuple) and value:
                for element in value:
                    yield [item.index, *head, *sub_extract(element), *tail]
            else:
                yield [item.index, *head, *empty, *tail]


def _pick(plan: Plan, field: str | None) -> int | None:
    """The column to explode: ``field`` when given (a dotted column name), else the first array column.
    ``ValueError`` when ``field`` names no array column."""
    arrays = [i for i, c in enumerate(plan.columns) if c.kind == "array" or plan.types[i] & {list, tuple}]
    if field is not None:
        for i in arrays:
            if plan.columns[i].name == field:
                return i
        raise ValueError(f"explode_field {field!r} is not an array column")
    return arrays[0] if arrays else None
