"""The format table and the single entry point."""

from __future__ import annotations

from typing import BinaryIO

from ._model import ExportMeta, ExportOptions, FormatSpec, ItemsFactory, WriteStats
from ._sink import HashingSink
from .csv_writer import write_csv
from .html_writer import write_html
from .json_writer import write_json, write_jsonl
from .md_writer import write_md
from .parquet_writer import write_parquet
from .pdf_writer import write_pdf
from .txt_writer import write_txt
from .xlsx_writer import write_xlsx
from .xml_writer import write_xml

FORMATS: dict[str, FormatSpec] = {
    "json": FormatSpec("application/json", "json", write_json),
    "jsonl": FormatSpec("application/x-ndjson", "jsonl", write_jsonl),
    "csv": FormatSpec("text/csv; charset=utf-8", "csv", write_csv),
    "xlsx": FormatSpec(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx", write_xlsx
    ),
    "pdf": FormatSpec("application/pdf", "pdf", write_pdf),
    "md": FormatSpec("text/markdown; charset=utf-8", "md", write_md),
    "html": FormatSpec("text/html; charset=utf-8", "html", write_html),
    "xml": FormatSpec("application/xml", "xml", write_xml),
    "txt": FormatSpec("text/plain; charset=utf-8", "txt", write_txt),
    "parquet": FormatSpec("application/vnd.apache.parquet", "parquet", write_parquet),
}


def write_export(
    fmt: str,
    items: ItemsFactory,
    meta: ExportMeta,
    out: BinaryIO,
    options: ExportOptions = ExportOptions(),
) -> WriteStats:
    """Write every item of ``items()`` to ``out`` in format ``fmt``.

    ``items`` returns a fresh iterator each call; a writer calls it a second time only when the schema
    does not settle the columns (see ``_plan``). ``out`` is written sequentially and never closed or
    seeked. Raises ``ValueError`` for an unknown format and :class:`SchemaDriftError` when an item breaks
    its closed schema (the export would otherwise silently drop data).
    """
    spec = FORMATS.get(fmt)
    if spec is None:
        raise ValueError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    sink = HashingSink(out)
    count = spec.writer(items, meta, sink, options)
    sink.flush()
    return WriteStats(bytes=sink.bytes, items=count, sha256=sink.sha256)
