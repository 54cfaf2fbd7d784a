"""Reading an uploaded dataset file (spooled to disk) into chunks of rows: CSV, JSONL, Parquet.

Each reader is a plain generator (run off the event loop, one chunk at a time) that yields lists of row dicts and
raises :class:`~llmts_templates.domain.datasets.DatasetError` naming the file's line when one is bad. CSV: UTF-8
(a BOM is dropped), the first row is the header (non-empty, unique names), every row has as many fields as the
header, quoted fields may span lines (the error then names the line the row started on). JSONL: one JSON object per
non-empty line. Parquet: pyarrow, in record batches; dates, times, decimals and binaries become strings.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from llmts_templates.domain.datasets import ColumnTypes, DatasetError, DatasetLimits

Format = Literal["csv", "jsonl", "parquet"]
CHUNK_ROWS = 1000
CHUNK_CHARS = 4_000_000  # well below MongoDB's 16 MB document limit


def _chunks(rows: Iterator[tuple[int, dict[str, Any]]], types: ColumnTypes, limits: DatasetLimits) -> Iterator[list[dict[str, Any]]]:  # fmt: skip
    chunk: list[dict[str, Any]] = []
    size = 0
    for line, row in rows:
        if types.rows >= limits.max_rows:
            raise DatasetError(f"more than {limits.max_rows} rows", line)
        types.add(row, line)
        chunk.append(row)
        size += sum(len(v) if isinstance(v, str) else 16 for v in row.values())
        if len(chunk) >= CHUNK_ROWS or size >= CHUNK_CHARS:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _text_lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DatasetError("not UTF-8 text", number) from None
            yield number, text.removeprefix("\ufeff") if number == 1 else text


def _csv_rows(path: Path, limits: DatasetLimits) -> Iterator[tuple[int, dict[str, Any]]]:
    csv.field_size_limit(limits.max_cell_chars)
    reader = csv.reader((text for _, text in _text_lines(path)), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise DatasetError("the file is empty")
        names = [h.strip() for h in header]
        if any(not n for n in names):
            raise DatasetError("the header has an empty column name", 1)
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise DatasetError(f"duplicate column names: {', '.join(duplicates)}", 1)
        while True:
            start = reader.line_num + 1  # the line this row starts on (a quoted field may span lines)
            fields = next(reader, None)
            if fields is None:
                return
            if not fields or fields == [""]:
                continue  # a blank line
            if len(fields) != len(names):
                raise DatasetError(f"expected {len(names)} fields, got {len(fields)}", start)
            yield start, dict(zip(names, fields, strict=True))
    except csv.Error as exc:
        raise DatasetError(f"malformed CSV: {exc}", reader.line_num) from None


def _jsonl_rows(path: Path, limits: DatasetLimits) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, text in _text_lines(path):
        if not text.strip():
            continue
        if len(text) > limits.max_cell_chars * 10:
            raise DatasetError("line too long", number)
        try:
            row = json.loads(text)
        except ValueError as exc:
            raise DatasetError(f"not JSON: {exc.args[0] if exc.args else exc}", number) from None
        if not isinstance(row, dict):
            raise DatasetError("each line must be a JSON object", number)
        yield number, row


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | dt.timedelta):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _parquet_rows(path: Path, _limits: DatasetLimits) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DatasetError(f"not a Parquet file: {exc}") from None
    number = 0
    try:
        for batch in parquet.iter_batches(batch_size=CHUNK_ROWS):
            for row in batch.to_pylist():
                number += 1
                yield number, {str(k): _plain(v) for k, v in row.items()}
    except (pa.ArrowException, OSError) as exc:
        raise DatasetError(f"unreadable Parquet data: {exc}", number + 1) from None


def read_rows(path: Path, fmt: Format, limits: DatasetLimits, types: ColumnTypes) -> Iterator[list[dict[str, Any]]]:  # fmt: skip
    """Chunks of rows of the file at ``path``; ``types`` learns the columns on the way."""
    rows = {"csv": _csv_rows, "jsonl": _jsonl_rows, "parquet": _parquet_rows}[fmt](path, limits)
    yield from _chunks(rows, types, limits)
