"""csv: parsed back with the csv module; dotted columns, BOM, neutralisation."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from services.exporter.tests.unit.samples import (
    CONTROL,
    FORMULA,
    ITEMS,
    TEXTS,
    Factory,
    export,
    make_meta,
    text_meta,
)

from llmts_exporter.writers import SchemaDriftError

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def rows(raw: bytes, delimiter: str = ",") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline=""), delimiter=delimiter))


def test_columns_follow_schema_order_then_extra_keys_first_seen() -> None:
    raw = export("csv", ITEMS)
    header = next(csv.reader(io.StringIO(raw.decode())))
    assert header == [
        "name",
        "price.amount",
        "price.currency",
        "in_stock",
        "quantity",
        "tags",
        "supplier.name",
        "supplier.city",
        "released",
        "note",
        "1st name",
        "a:b",
        "<x>.y",
    ]


def test_values_round_trip_with_arrays_as_json() -> None:
    got = rows(export("csv", ITEMS))
    assert len(got) == 3
    first = got[0]
    assert first["name"] == "Чайник электрический «Витязь»"
    assert float(first["price.amount"]) == 2499.5
    assert first["supplier.city"] == "Москва"
    assert json.loads(first["tags"]) == ["кухня", "новинка"]
    assert got[1]["price.amount"] == ""  # price: null
    assert got[1]["note"] == "line one\nline two | pipe ]]> end"
    assert got[1]["supplier.name"] == "<script>alert(1)</script>"
    assert got[2]["<x>.y"] == "вложенное"
    assert got[2]["1st name"] == "Иван"


def test_formula_cells_are_neutralised() -> None:
    got = rows(export("csv", ITEMS))
    assert got[0]["note"] == "'" + FORMULA
    assert got[2]["name"] == "'+79991234567"
    assert got[2]["price.currency"] == "'@USD"
    assert got[2]["supplier.city"] == "'-Казань"
    assert got[2]["a:b"] == "'\tтаб"
    assert got[1]["quantity"] == "-3"  # numbers are data, not formulas
    for row in got:
        for value in row.values():
            assert not value.startswith(FORMULA_START) or is_number(value)


def is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def test_control_characters_are_removed() -> None:
    raw = export("csv", ITEMS)
    assert not any(b in raw for b in (b"\x00", b"\x07", b"\x1b"))
    assert rows(raw)[2]["supplier.name"] == "bell nul esc[31m red"
    assert CONTROL not in raw.decode()


def test_a_control_character_cannot_hide_a_formula() -> None:
    got = rows(export("csv", [{"a": "\x07=1+1"}], make_meta(schema=None)))
    assert got[0]["a"] == "'=1+1"


def test_bom_option() -> None:
    assert export("csv", ITEMS, csv_bom=True).startswith(b"\xef\xbb\xbf")
    assert not export("csv", ITEMS).startswith(b"\xef\xbb\xbf")


def test_semicolon_delimiter() -> None:
    assert rows(export("csv", ITEMS, csv_delimiter=";"), ";")[0]["supplier.city"] == "Москва"


def test_text_templates_have_index_and_text_columns() -> None:
    got = rows(export("csv", TEXTS, text_meta()))
    assert list(got[0]) == ["index", "text"]
    assert [r["index"] for r in got] == ["0", "1", "2"]
    assert got[0]["text"] == TEXTS[0]
    assert got[1]["text"] == TEXTS[1]


def test_closed_schema_reads_items_once_open_schema_twice() -> None:
    closed = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
    }
    factory = Factory([{"a": "x", "b": 1}, {"a": "y", "b": 2}])
    export("csv", factory, make_meta(schema=closed))
    assert factory.calls == 1
    factory = Factory([{"a": "x", "b": 1}])
    export("csv", factory, make_meta(schema={**closed, "additionalProperties": True}))
    assert factory.calls == 2


def test_item_breaking_a_closed_schema_fails_loudly() -> None:
    closed = {"type": "object", "additionalProperties": False, "properties": {"a": {"type": "string"}}}
    with pytest.raises(SchemaDriftError, match="zzz"):
        export("csv", [{"a": "x"}, {"a": "y", "zzz": 1}], make_meta(schema=closed))


def test_no_schema_discovers_columns() -> None:
    data: list[dict[str, Any]] = [{"b": 1, "n": {"x": 1}}, {"a": "z", "n": {"y": [1, 2]}}]
    got = rows(export("csv", data, make_meta(schema=None)))
    assert list(got[0]) == ["b", "n.x", "a", "n.y"]
    assert got[1]["n.y"] == "[1, 2]"


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_string_survives_csv_neutralised(value: str) -> None:
    raw = export("csv", [{"v": value}, {"v": "end"}], make_meta(schema=None))
    got = rows(raw)
    assert len(got) == 2
    assert got[1]["v"] == "end"
    cell = got[0]["v"]
    assert not cell.startswith(FORMULA_START)
    cleaned = "".join(c for c in value if c in "\t\n\r" or ord(c) >= 0x20)
    assert cell in (cleaned, "'" + cleaned)


def test_booleans_and_nulls_as_csv_expects() -> None:
    got = rows(export("csv", ITEMS))
    assert [r["in_stock"] for r in got] == ["true", "false", ""]
    assert got[2]["note"] == ""
    assert got[1]["price.amount"] == ""
    raw = export("csv", [{"ok": True, "none": None, "deep": {"flag": False}}], make_meta(schema=None))
    assert raw.decode().splitlines()[1] == "true,,false"
    assert b"True" not in raw
    assert b"None" not in raw
