"""json / jsonl: parsed back with the json module."""

from __future__ import annotations

import json

from services.exporter.tests.unit.samples import ITEMS, TEXTS, Factory, export, make_meta, text_meta


def test_json_array_round_trips_items_exactly() -> None:
    raw = export("json", ITEMS)
    assert json.loads(raw) == ITEMS
    assert "Чайник".encode() in raw  # UTF-8, not \\u escapes


def test_json_envelope_carries_meta_and_items() -> None:
    doc = json.loads(export("json", ITEMS, envelope=True))
    assert doc["items"] == ITEMS
    assert doc["meta"]["template_name"] == "Каталог товаров"
    assert doc["meta"]["job_id"] == "job-0042"
    assert doc["meta"]["created_at"] == "2025-06-01T12:00:00+00:00"
    assert doc["meta"]["schema"]["properties"]["name"] == {"type": "string"}


def test_json_of_no_items_is_an_empty_array() -> None:
    assert json.loads(export("json", [])) == []
    assert json.loads(export("json", [], envelope=True))["items"] == []


def test_json_reads_the_items_once() -> None:
    factory = Factory(ITEMS)
    export("json", factory)
    assert factory.calls == 1


def test_json_non_finite_numbers_become_null() -> None:
    data = [{"a": float("nan"), "b": [float("inf"), 1.5]}]
    assert json.loads(export("json", data, make_meta(schema=None))) == [{"a": None, "b": [None, 1.5]}]


def test_jsonl_one_item_per_line() -> None:
    lines = export("jsonl", ITEMS).decode().splitlines()
    assert [json.loads(line) for line in lines] == ITEMS


def test_text_templates_export_strings() -> None:
    assert json.loads(export("json", TEXTS, text_meta())) == TEXTS
    lines = export("jsonl", TEXTS, text_meta()).decode().split("\n")
    assert [json.loads(line) for line in lines if line] == TEXTS
