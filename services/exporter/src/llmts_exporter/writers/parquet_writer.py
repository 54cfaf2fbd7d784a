"""Parquet via pyarrow: typed, dotted (flattened) columns written in bounded row groups.

Types come from the schema and are checked against the data in a first pass (parquet needs the schema
before the first row group): ``string`` → string, ``integer`` → int64, ``number`` → double, ``boolean`` →
bool, ``format: date-time`` → timestamp[us, UTC], ``format: date`` → date32. A column whose values do not
all fit its declared type (or that the schema does not name) gets the narrowest type that holds every
value, else string. Arrays and free-form objects are JSON text. The job's metadata is in the file's
key-value metadata under ``llmts.meta``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from ._model import ExportMeta, ExportOptions, ItemsFactory
from ._plan import Column, Plan
from ._sink import HashingSink
from ._values import json_text

_INT64 = (-(2**63), 2**63 - 1)
_NONE = type(None)


def _to_datetime(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _to_date(value: Any) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)


def _parses(plan: Plan, col: int, items: ItemsFactory, parse: Callable[[Any], Any]) -> bool:
    """Whether every value of a date/date-time column parses (one more pass, only for such columns)."""
    extract = plan.extractor()
    try:
        for item in items():
            parse(extract(item.data)[col])
    except (TypeError, ValueError):
        return False
    return True


def _string(value: Any) -> str | None:
    if value is None or value.__class__ is str:
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dict | list | tuple):
        return json_text(value)
    return str(value)


def _column_type(pa: Any, plan: Plan, index: int, column: Column, items: ItemsFactory) -> tuple[Any, Any]:
    """(arrow type, converter or None) for one column."""
    seen = plan.types[index] - {_NONE}
    lo, hi = plan.int_range[index]
    ints_fit = _INT64[0] <= lo and hi <= _INT64[1]
    kind = column.kind
    if kind in ("datetime", "date") and seen <= {str}:
        parse = _to_datetime if kind == "datetime" else _to_date
        if not seen or _parses(plan, index, items, parse):
            return (pa.timestamp("us", tz="UTC") if kind == "datetime" else pa.date32()), parse
        return pa.string(), None
    if seen == {bool} or (not seen and kind == "boolean"):
        return pa.bool_(), None
    if (seen == {int} and ints_fit) or (not seen and kind == "integer"):
        return pa.int64(), None
    if (seen and seen <= {int, float} and ints_fit) or (not seen and kind == "number"):
        return pa.float64(), float
    return pa.string(), _string


def write_parquet(items: ItemsFactory, meta: ExportMeta, out: HashingSink, options: ExportOptions) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    text_mode = meta.output_format == "text"
    if text_mode:
        names = ["index", "text"]
        types: list[Any] = [pa.int64(), pa.string()]
        converters: list[Any] = [None, _string]
    else:
        plan = Plan.from_schema(meta.schema)
        plan.discover(items(), track_types=True)
        names = [c.name for c in plan.columns]
        typed = [_column_type(pa, plan, i, c, items) for i, c in enumerate(plan.columns)]
        types = [t for t, _ in typed]
        converters = [conv for _, conv in typed]
        extract = plan.extractor()

    schema = pa.schema(
        [pa.field(n, t) for n, t in zip(names, types, strict=True)],
        metadata={"llmts.meta": json_text(meta.as_dict())},
    )
    size = options.parquet_row_group_size
    count = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        rows: list[list[Any]] = []

        def flush() -> None:
            if not rows:
                return
            columns = list(zip(*rows, strict=True)) if rows else []
            arrays = []
            for values, typ, conv in zip(columns, types, converters, strict=True):
                data = values if conv is None else [None if v is None else conv(v) for v in values]
                arrays.append(pa.array(data, type=typ))
            writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
            rows.clear()

        for item in items():
            if text_mode:
                data = item.data
                rows.append([item.index, data if isinstance(data, str) else json_text(data)])
            else:
                rows.append(extract(item.data))
            count += 1
            if len(rows) >= size:
                flush()
        flush()
    return count
