"""xlsx: loaded back with openpyxl."""

from __future__ import annotations

import io
import json
from typing import Any

from openpyxl import load_workbook
from services.exporter.tests.unit.samples import FORMULA, ITEMS, TEXTS, export, make_meta, text_meta


def load(raw: bytes) -> Any:
    return load_workbook(io.BytesIO(raw))


def values(ws: Any) -> list[list[Any]]:
    return [[c.value for c in row] for row in ws.iter_rows()]


def test_sheet_has_bold_frozen_header_autofilter_and_widths() -> None:
    wb = load(export("xlsx", ITEMS))
    assert wb.sheetnames == ["items", "meta"]
    ws = wb["items"]
    header = list(next(ws.iter_rows(max_row=1)))
    assert [c.value for c in header][:3] == ["name", "price.amount", "price.currency"]
    assert all(c.font.bold for c in header)
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:M4"
    widths = {k: v.width for k, v in ws.column_dimensions.items()}
    assert widths["A"] > widths["D"]  # long names vs in_stock
    assert all(6 <= w <= 60 for w in widths.values())


def test_values_round_trip_typed() -> None:
    rows = values(load(export("xlsx", ITEMS))["items"])
    header, first, second, third = rows
    row = dict(zip(header, first, strict=True))
    assert row["name"] == "Чайник электрический «Витязь»"
    assert row["price.amount"] == 2499.5
    assert row["in_stock"] is True
    assert row["quantity"] == 12
    assert json.loads(row["tags"]) == ["кухня", "новинка"]
    assert row["supplier.city"] == "Москва"
    row2 = dict(zip(header, second, strict=True))
    assert row2["supplier.name"] == "<script>alert(1)</script>"
    assert row2["note"] == "line one\nline two | pipe ]]> end"
    assert row2["quantity"] == -3
    row3 = dict(zip(header, third, strict=True))
    assert row3["<x>.y"] == "вложенное"


def test_formulas_neutralised_and_illegal_characters_stripped() -> None:
    wb = load(export("xlsx", ITEMS))
    ws = wb["items"]
    header, first, _, third = values(ws)
    assert dict(zip(header, first, strict=True))["note"] == "'" + FORMULA
    row3 = dict(zip(header, third, strict=True))
    assert row3["name"] == "'+79991234567"
    assert row3["supplier.name"] == "bell nul esc[31m red"
    assert row3["a:b"] == "'\tтаб"
    for row in ws.iter_rows():
        for cell in row:
            assert cell.data_type != "f"


def test_meta_sheet() -> None:
    meta = {r[0]: r[1] for r in values(load(export("xlsx", ITEMS))["meta"])}
    assert meta["Template"] == "Каталог товаров"
    assert meta["Version"] == 3
    assert meta["Model"] == "gpt-4o-mini"
    assert meta["Exported items"] == 3
    assert meta["Completion tokens"] == 3400
    assert meta["Cost, USD"] == 0.0123
    assert meta["Created"] == "2025-06-01T12:00:00+00:00"


def test_malicious_template_name_in_meta_is_neutralised() -> None:
    meta = {
        r[0]: r[1]
        for r in values(load(export("xlsx", ITEMS, make_meta(template_name="=cmd|' /C calc'!A0")))["meta"])
    }
    assert meta["Template"] == "'=cmd|' /C calc'!A0"


def test_text_templates() -> None:
    rows = values(load(export("xlsx", TEXTS, text_meta()))["items"])
    assert rows[0] == ["index", "text"]
    assert rows[1] == [0, TEXTS[0]]
    assert rows[2][1].startswith("Second story with <script>")
    assert rows[3][1] == "bell nul esc[31m red"


def test_width_sample_is_bounded() -> None:
    data = [{"a": "x"}] * 5 + [{"a": "y" * 500}]
    ws = load(export("xlsx", data, make_meta(schema=None), xlsx_width_sample=5))["items"]
    assert ws.column_dimensions["A"].width < 20  # the long value was beyond the sample
    assert ws.max_row == 7
