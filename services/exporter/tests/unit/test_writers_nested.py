"""The ``nested`` option of the tabular formats: json, flatten (default) and explode."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from openpyxl import load_workbook
from services.exporter.tests.unit.samples import ITEMS, export, make_meta

from llmts_exporter.writers import ExportOptions

QUIZ: list[dict[str, Any]] = [
    {
        "question": f"Вопрос {i}?",
        "options": [{"label": c, "text": f"Ответ {c}{i}", "correct": c == "B"} for c in "ABCD"],
        "answer": "B",
    }
    for i in range(3)
]
QUIZ_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "question": {"type": "string"},
        "options": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "text": {"type": "string"},
                    "correct": {"type": "boolean"},
                },
            },
        },
        "answer": {"type": "string"},
    },
}


def csv_rows(raw: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))


def test_json_mode_keeps_one_column_per_top_level_key() -> None:
    rows = csv_rows(export("csv", ITEMS, nested="json"))
    assert rows[0][:6] == ["name", "price", "in_stock", "quantity", "tags", "supplier"]
    first = dict(zip(rows[0], rows[1], strict=True))
    assert json.loads(first["price"]) == {"amount": 2499.5, "currency": "RUB"}
    assert json.loads(first["supplier"]) == {"name": "ООО Ромашка", "city": "Москва"}
    assert first["in_stock"] == "true"
    assert "<x>" in rows[0]  # a key only the data has: its object is JSON text too
    assert json.loads(dict(zip(rows[0], rows[3], strict=True))["<x>"]) == {"y": "вложенное"}


def test_flatten_is_the_default() -> None:
    assert export("csv", ITEMS, nested="flatten") == export("csv", ITEMS)
    assert csv_rows(export("csv", ITEMS))[0][1] == "price.amount"


def test_explode_gives_one_row_per_array_element() -> None:
    meta = make_meta(schema=QUIZ_SCHEMA, template_name="Quiz questions")
    rows = csv_rows(export("csv", QUIZ, meta, nested="explode"))
    assert rows[0] == ["item", "question", "options.label", "options.text", "options.correct", "answer"]
    assert len(rows) == 1 + 3 * 4
    assert rows[1] == ["0", "Вопрос 0?", "A", "Ответ A0", "false", "B"]
    assert rows[2] == ["0", "Вопрос 0?", "B", "Ответ B0", "true", "B"]
    assert rows[-1] == ["2", "Вопрос 2?", "D", "Ответ D2", "false", "B"]


def test_explode_a_named_array_of_scalars_and_empty_arrays() -> None:
    rows = csv_rows(export("csv", ITEMS, nested="explode", explode_field="tags"))
    header = rows[0]
    assert header[0] == "item"
    tags = header.index("tags")
    assert [(r[0], r[tags]) for r in rows[1:]] == [("0", "кухня"), ("0", "новинка"), ("1", ""), ("2", "x")]
    assert header[tags + 1] == "supplier.name"  # the other columns stay flattened around it


def test_explode_field_must_name_an_array() -> None:
    with pytest.raises(ValueError, match="not an array column"):
        export("csv", ITEMS, nested="explode", explode_field="name")
    with pytest.raises(ValueError, match="needs nested=explode"):
        ExportOptions(explode_field="tags")
    with pytest.raises(ValueError, match="nested must be"):
        ExportOptions(nested="deep")  # type: ignore[arg-type]


def test_xlsx_explode_and_json_modes() -> None:
    meta = make_meta(schema=QUIZ_SCHEMA)
    wb = load_workbook(io.BytesIO(export("xlsx", QUIZ, meta, nested="explode")), read_only=True)
    rows = [list(r) for r in wb["items"].iter_rows(values_only=True)]
    assert rows[0] == ["item", "question", "options.label", "options.text", "options.correct", "answer"]
    assert rows[1] == [0, "Вопрос 0?", "A", "Ответ A0", False, "B"]
    assert len(rows) == 13
    meta_rows = dict(wb["meta"].iter_rows(values_only=True))
    assert meta_rows["Exported items"] == 3  # items, not rows
    wb = load_workbook(io.BytesIO(export("xlsx", QUIZ, meta, nested="json")), read_only=True)
    rows = [list(r) for r in wb["items"].iter_rows(values_only=True)]
    assert rows[0] == ["question", "options", "answer"]
    assert json.loads(rows[1][1])[1] == {"label": "B", "text": "Ответ B0", "correct": True}
