"""parquet: read back with pyarrow; typed columns, bounded row groups."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from services.exporter.tests.unit.samples import ITEMS, TEXTS, export, make_meta, text_meta


def read(raw: bytes) -> Any:
    return pq.read_table(io.BytesIO(raw))


def test_typed_columns_from_schema() -> None:
    table = read(export("parquet", ITEMS, nested="flatten"))
    types = {f.name: f.type for f in table.schema}
    assert types["name"] == pa.string()
    assert types["price.amount"] == pa.float64()
    assert types["in_stock"] == pa.bool_()
    assert types["quantity"] == pa.int64()
    assert types["tags"] == pa.string()  # arrays as JSON text
    assert types["released"] == pa.timestamp("us", tz="UTC")
    assert types["<x>.y"] == pa.string()


def test_values_round_trip() -> None:
    rows = read(export("parquet", ITEMS, nested="flatten")).to_pylist()
    assert rows[0]["name"] == "Чайник электрический «Витязь»"
    assert rows[0]["price.amount"] == 2499.5
    assert rows[2]["price.amount"] == 10.0  # an int in a number column
    assert json.loads(rows[0]["tags"]) == ["кухня", "новинка"]
    assert rows[1]["released"] == dt.datetime(2025, 4, 2, 8, 30, tzinfo=dt.UTC)
    assert rows[1]["price.amount"] is None
    assert rows[2]["in_stock"] is None
    assert rows[2]["1st name"] == "Иван"
    assert rows[2]["supplier.name"] == "bell\x07 nul\x00 esc\x1b[31m red"  # typed data, kept as is
    assert rows[0]["note"].startswith("=HYPERLINK")  # no formulas in parquet, no neutralisation


def test_mismatching_values_fall_back_to_string() -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "d": {"type": "string", "format": "date-time"}},
    }
    data = [{"n": 1, "d": "2025-01-01T00:00:00Z"}, {"n": "много", "d": "вчера"}, {"n": 2**70, "d": None}]
    table = read(export("parquet", data, make_meta(schema=schema)))
    assert table.schema.field("n").type == pa.string()
    assert table.schema.field("d").type == pa.string()
    assert table.column("n").to_pylist() == ["1", "много", str(2**70)]


def test_row_groups_bound_memory() -> None:
    data = [{"i": i, "s": f"строка {i}"} for i in range(2500)]
    raw = export("parquet", data, make_meta(schema=None), parquet_row_group_size=1000)
    meta = pq.ParquetFile(io.BytesIO(raw)).metadata
    assert meta.num_row_groups == 3
    assert meta.num_rows == 2500
    assert json.loads(meta.metadata[b"llmts.meta"])["template_name"] == "Каталог товаров"


def test_text_templates() -> None:
    table = read(export("parquet", TEXTS, text_meta()))
    assert table.column_names == ["index", "text"]
    assert table.column("text").to_pylist() == TEXTS
    assert table.schema.field("index").type == pa.int64()


def test_nested_data_keeps_struct_and_list_types_by_default() -> None:
    raw = export("parquet", ITEMS)
    table = read(raw)
    types = {f.name: f.type for f in table.schema}
    assert table.column_names[:6] == ["name", "price", "in_stock", "quantity", "tags", "supplier"]
    assert types["price"] == pa.struct([("amount", pa.float64()), ("currency", pa.string())])
    assert types["tags"] == pa.list_(pa.string())
    assert types["supplier"] == pa.struct([("name", pa.string()), ("city", pa.string())])
    assert types["released"] == pa.timestamp("us", tz="UTC")
    rows = table.to_pylist()
    assert rows[0]["price"] == {"amount": 2499.5, "currency": "RUB"}
    assert rows[2]["price"] == {"amount": 10.0, "currency": "@USD"}
    assert rows[1]["price"] is None
    assert rows[0]["tags"] == ["кухня", "новинка"]
    assert rows[1]["tags"] == []
    assert rows[2]["<x>"] == {"y": "вложенное"}
    assert (
        pq.ParquetFile(io.BytesIO(raw)).schema_arrow.metadata[b"template_name"] == "Каталог товаров".encode()
    )


def test_struct_fields_merge_across_batches_and_mixed_values_fall_back_to_json() -> None:
    data: list[dict[str, Any]] = [{"o": {"a": i}, "m": {"k": 1}, "e": {}} for i in range(6000)]
    data.append({"o": {"b": "x", "a": 1.5}, "m": "строка", "e": {}})
    table = read(export("parquet", data, make_meta(schema=None)))
    types = {f.name: f.type for f in table.schema}
    assert types["o"] == pa.struct([("a", pa.float64()), ("b", pa.string())])
    assert table.column("o").to_pylist()[0] == {"a": 0.0, "b": None}
    assert types["m"] == pa.string()  # objects and strings mixed: JSON text
    assert json.loads(table.column("m").to_pylist()[0]) == {"k": 1}
    assert types["e"] == pa.string()  # only empty objects: parquet has no struct without fields


def test_json_and_explode_modes() -> None:
    table = read(export("parquet", ITEMS, nested="json"))
    assert table.schema.field("price").type == pa.string()
    assert json.loads(table.column("price").to_pylist()[0]) == {"amount": 2499.5, "currency": "RUB"}
    table = read(export("parquet", ITEMS, nested="explode", explode_field="tags"))
    assert table.column_names[:2] == ["item", "name"]
    assert table.schema.field("tags").type == pa.string()
    assert table.column("item").to_pylist() == [0, 0, 1, 2]
    assert table.column("tags").to_pylist() == ["кухня", "новинка", None, "x"]
    assert table.schema.field("price.amount").type == pa.float64()
