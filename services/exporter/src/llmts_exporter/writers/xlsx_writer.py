"""XLSX via openpyxl's write-only mode: bold frozen header, autofilter, sized columns, a "meta" sheet."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from . import _diversity, _provenance
from ._model import ExportItem, ExportMeta, ExportOptions, ItemsFactory
from ._nested import Exploded, column_plan
from ._sink import HashingSink
from ._values import FORMULA_PREFIXES, json_text, xml_clean

MAX_ROWS = 1_048_576
"""Excel's row limit; larger exports continue on sheets "items 2", "items 3", …"""
_MIN_WIDTH, _MAX_WIDTH = 6.0, 60.0
_PLAIN = frozenset({int, bool, type(None)})
_CONTAINERS = frozenset({dict, list, tuple})


def text_cell(value: Any) -> Any:
    """A value made safe for a cell.

    str (and list/dict as JSON text): XML-illegal characters removed and a leading formula character
    neutralised — openpyxl would store a str starting with ``=`` as a formula; the ``'`` prefix keeps it
    text (the other formula characters get it too, as in CSV, so re-saving the sheet as CSV stays safe).
    Non-finite floats (which would corrupt the sheet XML) and unknown objects become text.
    """
    cls = value.__class__
    if cls is float:
        return value if math.isfinite(value) else str(value)
    if cls is str:
        text = xml_clean(value)
    elif cls in _CONTAINERS:
        text = xml_clean(json_text(value))
    else:
        text = xml_clean(str(value))
    return ("'" + text) if text[:1] in FORMULA_PREFIXES else text


def cell_converter() -> Callable[[list[Any]], list[Any]]:
    """Raw values → cell values; numbers, booleans and ``None`` pass through untouched."""
    plain = _PLAIN
    cell = text_cell

    def convert(raw: list[Any]) -> list[Any]:
        return [v if v.__class__ in plain else cell(v) for v in raw]

    return convert


def _width(value: Any) -> float:
    if value is None:
        return 0.0
    text = value if isinstance(value, str) else str(value)
    longest = max((len(line) for line in text.split("\n")), default=0)
    return float(longest)


class _Sheets:
    """Write-only sheets with the same header and widths; a new one past Excel's row limit."""

    def __init__(self, wb: Any, header: list[str], widths: list[float]) -> None:
        from openpyxl.styles import Alignment, Font
        from openpyxl.utils import get_column_letter

        self._wb = wb
        self._header = header
        self._widths = widths
        self._letter = get_column_letter
        self._font = Font(bold=True)
        self._align = Alignment(vertical="top")
        self._sheets: list[tuple[Any, int]] = []
        self.ws: Any = None
        self.rows = 0

    def new(self) -> None:
        from openpyxl.cell import WriteOnlyCell

        self._finish()
        n = len(self._sheets) + 1
        ws = self._wb.create_sheet("items" if n == 1 else f"items {n}")
        for i, w in enumerate(self._widths, 1):
            ws.column_dimensions[self._letter(i)].width = w
        ws.freeze_panes = "A2"
        cells = []
        for name in self._header:
            c = WriteOnlyCell(ws, value=name)
            c.font = self._font
            c.alignment = self._align
            cells.append(c)
        ws.append(cells)
        self.ws = ws
        self.rows = 1

    def _finish(self) -> None:
        if self.ws is not None:
            last = self._letter(max(len(self._header), 1))
            self.ws.auto_filter.ref = f"A1:{last}{self.rows}"
            self._sheets.append((self.ws, self.rows))

    def close(self) -> None:
        self._finish()
        self.ws = None


def write_xlsx(items: ItemsFactory, meta: ExportMeta, out: HashingSink, options: ExportOptions) -> int:
    from openpyxl import Workbook

    convert = cell_converter()
    rows: Iterator[list[Any]]
    exploded: Exploded | None = None
    provenance = _provenance.wanted(meta, options)
    tail = list(_provenance.COLUMNS) if provenance else []

    def with_tail(row: list[Any], item: ExportItem) -> list[Any]:
        return convert([*row, *_provenance.flat_values(item)] if provenance else row)

    if meta.output_format == "text":
        header = ["index", "text", *tail]

        def text_rows(source: Iterable[ExportItem]) -> Iterator[list[Any]]:
            for item in source:
                text = item.data if isinstance(item.data, str) else json_text(item.data)
                yield with_tail([item.index, text], item)

        rows = text_rows(items())
    elif options.nested == "explode":
        exploded = Exploded(meta, items, options)
        header = [xml_clean(name) for name in exploded.header()]
        rows = (convert(row) for row in exploded.rows())
    else:
        plan = column_plan(meta, items, options)
        names = [c.name for c in plan.columns]
        if provenance:
            _provenance.check_names(names)
        header = [xml_clean(name) for name in (*names, *tail)]
        extract = plan.extractor()
        rows = (with_tail(extract(item.data), item) for item in items())

    # Column widths from a bounded sample of the first rows (write-only sheets need them up front).
    sample = list(itertools.islice(rows, options.xlsx_width_sample))
    widths = [max(_width(h) * 1.2 + 2, _MIN_WIDTH) for h in header]
    for row in sample:
        for i, v in enumerate(row):
            widths[i] = max(widths[i], _width(v) + 2)
    widths = [min(w, _MAX_WIDTH) for w in widths]

    wb = Workbook(write_only=True)
    sheets = _Sheets(wb, header, widths)
    sheets.new()
    count = 0
    for row in itertools.chain(sample, rows):
        if sheets.rows >= MAX_ROWS:
            sheets.new()
        sheets.ws.append(row)
        sheets.rows += 1
        count += 1
    sheets.close()
    del sample
    written = count if exploded is None else exploded.item_count  # exploded rows are array elements

    _meta_sheet(wb, meta, written)
    report = _diversity.report(meta, options)
    if report is not None:
        sheet = wb.create_sheet(_diversity.SHEET)
        for label, value in _diversity.rows(report):
            sheet.append([label, value])
    wb.save(out)
    return written


def _meta_sheet(wb: Any, meta: ExportMeta, count: int) -> None:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    ws = wb.create_sheet("meta")
    ws.column_dimensions["A"].width = 22
    ws.column_dimensions["B"].width = 60
    bold = Font(bold=True)
    values: list[tuple[str, Any]] = [
        ("Template", meta.template_name),
        ("Version", meta.template_version),
        ("Model", meta.model),
        ("Models", ", ".join(meta.models) or meta.model),
        ("Job", meta.job_id),
        ("Created", meta.created_at.isoformat(timespec="seconds")),
        ("Requested", meta.requested),
        ("Succeeded", meta.succeeded),
        ("Rejected", meta.rejected),
        ("Exported items", count),
        ("Prompt tokens", meta.prompt_tokens),
        ("Completion tokens", meta.completion_tokens),
        ("Cost, USD", meta.cost_usd),
        ("Output", meta.output_format),
    ]
    convert = cell_converter()
    for label, value in values:
        key = WriteOnlyCell(ws, value=label)
        key.font = bold
        ws.append([key, *convert([value])])
