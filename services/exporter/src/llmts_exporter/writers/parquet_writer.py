"""Parquet via pyarrow: typed columns written in bounded row groups.

Nested data (the ``nested`` option): by default one column per top-level key, objects as ``struct`` and arrays
as ``list`` columns (types inferred from the data in a pass of their own, merged across batches: missing struct
fields are null, int and float meet as double; a column whose values do not fit one type, e.g. objects and
strings mixed, is JSON text). ``flatten``: dotted columns with arrays as JSON text; ``json``: top-level columns
with objects/arrays as JSON text; ``explode``: one row per array element (see ``_nested``).

Scalar types come from the schema and are checked against the data in a first pass (parquet needs the schema
before the first row group): ``string`` → string, ``integer`` → int64, ``number`` → double, ``boolean`` →
bool, ``format: date-time`` → timestamp[us, UTC], ``format: date`` → date32. A column whose values do not
all fit its declared type (or that the schema does not name) gets the narrowest type that holds every
value, else string. The job's metadata is in the file's key-value metadata under ``llmts.meta`` (JSON) and
``template_name``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

from . import _diversity, _provenance
from ._model import ExportMeta, ExportOptions, ItemsFactory
from ._nested import Exploded
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


class _Incompatible(Exception):
    """Two batches of a column inferred types that cannot be merged."""


def _merge(pa: Any, a: Any, b: Any) -> Any:
    """One arrow type holding values of both ``a`` and ``b`` (``_Incompatible`` when there is none)."""
    t = pa.types
    if a is None or a == b or t.is_null(b):
        return b if a is None or t.is_null(a) else a
    if t.is_null(a):
        return b
    if (t.is_integer(a) or t.is_floating(a)) and (t.is_integer(b) or t.is_floating(b)):
        return pa.float64()
    if t.is_list(a) and t.is_list(b):
        return pa.list_(_merge(pa, a.value_type, b.value_type))
    if t.is_struct(a) and t.is_struct(b):
        fields = {f.name: f.type for f in a}
        for f in b:
            fields[f.name] = _merge(pa, fields[f.name], f.type) if f.name in fields else f.type
        return pa.struct([pa.field(name, typ) for name, typ in fields.items()])
    raise _Incompatible


def _native_types(pa: Any, plan: Plan, containers: list[int], items: ItemsFactory) -> dict[int, Any]:
    """Arrow types of the container columns (objects/arrays) inferred from every value, batch by batch;
    a column whose values fit no single type is left out (it becomes JSON text)."""
    extract = plan.extractor()
    found: dict[int, Any] = dict.fromkeys(containers)
    batches: dict[int, list[Any]] = {c: [] for c in containers}

    def infer(col: int) -> None:
        values = batches[col]
        if col in found and values:
            try:
                found[col] = _merge(pa, found[col], pa.array(values).type)
            except (_Incompatible, pa.ArrowException, TypeError, ValueError, OverflowError):
                del found[col]
        values.clear()

    for item in items():
        row = extract(item.data)
        for col in containers:
            batches[col].append(row[col])
            if len(batches[col]) >= 5000:
                infer(col)
    for col in containers:
        infer(col)
    return {col: typ for col, typ in found.items() if typ is not None and _writable(pa, typ)}


def _writable(pa: Any, typ: Any) -> bool:
    """Parquet cannot store a struct without fields (what ``{}`` values infer)."""
    if pa.types.is_struct(typ):
        return typ.num_fields > 0 and all(_writable(pa, f.type) for f in typ)
    if pa.types.is_list(typ):
        return _writable(pa, typ.value_type)
    return True


def _plan_columns(
    pa: Any, plan: Plan, items: ItemsFactory, *, native: bool
) -> tuple[list[str], list[Any], list[Any]]:
    """(names, arrow types, converters) of a discovered plan's columns."""
    typed = [_column_type(pa, plan, i, c, items) for i, c in enumerate(plan.columns)]
    types = [t for t, _ in typed]
    converters = [conv for _, conv in typed]
    if native:
        containers = [i for i, seen in enumerate(plan.types) if seen & {dict, list, tuple}]
        for col, typ in _native_types(pa, plan, containers, items).items():
            types[col], converters[col] = typ, None
    return [c.name for c in plan.columns], types, converters


def write_parquet(items: ItemsFactory, meta: ExportMeta, out: HashingSink, options: ExportOptions) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    exploded: Exploded | None = None
    rows_of: Callable[[], Iterator[list[Any]]]
    provenance = _provenance.wanted(meta, options)
    if meta.output_format == "text":
        names = ["index", "text"]
        types: list[Any] = [pa.int64(), pa.string()]
        converters: list[Any] = [None, _string]

        def rows_of() -> Iterator[list[Any]]:
            for item in items():
                data = item.data
                row = [item.index, data if isinstance(data, str) else json_text(data)]
                yield [*row, *_provenance.flat_values(item)] if provenance else row

    elif options.nested == "explode":
        exploded = Exploded(meta, items, options)
        names, types, converters = _exploded_columns(pa, exploded, items)
        rows_of = exploded.rows
    else:
        plan = Plan.from_schema(meta.schema, expand=options.nested == "flatten")
        plan.discover(items(), track_types=True)
        names, types, converters = _plan_columns(pa, plan, items, native=options.nested is None)
        extract = plan.extractor()

        def rows_of() -> Iterator[list[Any]]:
            if provenance:
                return ([*extract(item.data), *_provenance.flat_values(item)] for item in items())
            return (extract(item.data) for item in items())

    if provenance:
        _provenance.check_names(names)
        names, types, converters = _with_provenance(pa, names, types, converters)
    schema = pa.schema(
        [pa.field(n, t) for n, t in zip(names, types, strict=True)],
        metadata={
            "llmts.meta": json_text(meta.as_dict()),
            "template_name": meta.template_name,
            **(
                {_diversity.METADATA_KEY: json_text(report)}
                if (report := _diversity.report(meta, options))
                else {}
            ),
        },
    )
    count = _write_groups(pa, pq, out, schema, types, converters, rows_of(), options.parquet_row_group_size)
    return count if exploded is None else exploded.item_count


_PROVENANCE_TYPES: dict[str, tuple[str, Any]] = {
    "string": ("string", _string),
    "integer": ("int64", None),
    "number": ("float64", float),
    "object": ("string", _string),  # JSON text (flat_values)
}


def _with_provenance(
    pa: Any, names: list[str], types: list[Any], converters: list[Any]
) -> tuple[list[str], list[Any], list[Any]]:
    """The columns followed by the ``_``-prefixed provenance columns, typed from ``_provenance.FIELDS``."""
    typed = [_PROVENANCE_TYPES[f.kind] for f in _provenance.FIELDS]
    return (
        [*names, *_provenance.COLUMNS],
        [*types, *(getattr(pa, name)() for name, _ in typed)],
        [*converters, *(conv for _, conv in typed)],
    )


def _exploded_columns(
    pa: Any, exploded: Exploded, items: ItemsFactory
) -> tuple[list[str], list[Any], list[Any]]:
    names = [c.name for c in exploded.columns()]
    head = [_column_type(pa, exploded.plan, i, c, items) for i, c in enumerate(exploded.plan.columns)]
    sub = [
        _column_type(pa, exploded.sub, i, c, exploded.elements) for i, c in enumerate(exploded.sub.columns)
    ]
    at = exploded.at
    typed = [(pa.int64(), None), *(head if at is None else [*head[:at], *sub, *head[at + 1 :]])]
    return names, [t for t, _ in typed], [conv for _, conv in typed]


def _write_groups(
    pa: Any, pq: Any, out: HashingSink, schema: Any, types: list[Any], converters: list[Any],
    rows_iter: Iterator[list[Any]], size: int,
) -> int:  # fmt: skip
    """Write the rows in row groups of ``size``; returns the number of rows."""
    count = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        rows: list[list[Any]] = []

        def flush() -> None:
            if not rows:
                return
            columns = list(zip(*rows, strict=True))
            arrays = []
            for values, typ, conv in zip(columns, types, converters, strict=True):
                data = values if conv is None else [None if v is None else conv(v) for v in values]
                arrays.append(pa.array(data, type=typ))
            writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
            rows.clear()

        for row in rows_iter:
            rows.append(row)
            count += 1
            if len(rows) >= size:
                flush()
        flush()
    return count
