"""CSV: UTF-8 (optional BOM), dotted columns, arrays as JSON text, formula cells neutralised."""

from __future__ import annotations

import csv
import io
from typing import Any

from . import _provenance
from ._model import ExportMeta, ExportOptions, ItemsFactory
from ._nested import Exploded, column_plan
from ._sink import HashingSink
from ._values import FORMULA_PREFIXES, json_text

BOM = "\ufeff".encode()
CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
"""C0 controls other than tab/LF/CR: removed from the encoded output (they never occur inside a UTF-8
multi-byte sequence, so deleting the bytes is exact). Excel shows them as garbage and a terminal obeys them."""
CSV_FORMULA = FORMULA_PREFIXES | frozenset(map(chr, CONTROL_BYTES))
"""A cell starting with a control character is neutralised too: once the control is removed the cell
could start with ``=``."""
_BATCH = 2000


def neutralise_csv(text: str) -> str:
    return ("'" + text) if text[:1] in CSV_FORMULA else text


CSV_PLAIN: frozenset[type] = frozenset({int, float, type(None)})
"""Passed to the csv module as is (``None`` is an empty field); ``bool`` goes through :func:`csv_cell`."""


def csv_cell(value: Any) -> Any:
    """The slow path of a CSV cell (the compiled extractor handles str/int/float/None inline):
    booleans are ``true``/``false`` (as JSON writes them, not Python's ``True``), lists/dicts become
    JSON text (which starts with ``[``/``{``, never a formula), other objects str."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dict | list | tuple):
        return json_text(value)
    return neutralise_csv(str(value))


def _cell(value: Any) -> Any:
    return value if value.__class__ in CSV_PLAIN else csv_cell(value)


def write_csv(items: ItemsFactory, meta: ExportMeta, out: HashingSink, options: ExportOptions) -> int:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=options.csv_delimiter, lineterminator="\r\n")
    if options.csv_bom:
        out.write(BOM)

    def flush() -> None:
        out.write(buf.getvalue().encode("utf-8", "replace").translate(None, CONTROL_BYTES))
        buf.seek(0)
        buf.truncate()

    count = 0
    provenance = _provenance.wanted(meta, options)
    tail = _provenance.COLUMNS if provenance else ()
    if meta.output_format == "text":
        writer.writerow(("index", "text", *tail))
        for item in items():
            text = item.data if isinstance(item.data, str) else json_text(item.data)
            extra = [_cell(v) for v in _provenance.flat_values(item)] if provenance else []
            writer.writerow((item.index, neutralise_csv(text), *extra))
            count += 1
            if count % _BATCH == 0:
                flush()
        flush()
        return count

    if options.nested == "explode":
        exploded = Exploded(meta, items, options)
        writer.writerow([neutralise_csv(name) for name in exploded.header()])
        for row in exploded.rows():
            writer.writerow(
                [
                    v
                    if v.__class__ in CSV_PLAIN or (v.__class__ is str and v[:1] not in CSV_FORMULA)
                    else csv_cell(v)
                    for v in row
                ]
            )
            count += 1
            if count % _BATCH == 0:
                flush()
        flush()
        return exploded.item_count
    plan = column_plan(meta, items, options)
    names = [c.name for c in plan.columns]
    if provenance:
        _provenance.check_names(names)
    writer.writerow([neutralise_csv(name) for name in (*names, *tail)])
    extract = plan.extractor(cell=csv_cell, formula=CSV_FORMULA, plain=CSV_PLAIN)
    rows: list[list[Any]] = []
    for item in items():
        row = extract(item.data)
        if provenance:
            row.extend(_cell(v) for v in _provenance.flat_values(item))
        rows.append(row)
        if len(rows) >= _BATCH:
            writer.writerows(rows)
            count += len(rows)
            rows.clear()
            flush()
    writer.writerows(rows)
    count += len(rows)
    flush()
    return count
