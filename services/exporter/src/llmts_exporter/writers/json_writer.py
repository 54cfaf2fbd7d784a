"""JSON (array, or ``{"meta": …, "items": […]}``) and JSON Lines, streamed item by item."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import _diversity, _provenance
from ._model import ExportItem, ExportMeta, ExportOptions, ItemsFactory
from ._sink import HashingSink, TextBuffer
from ._values import json_text


def _item_value(meta: ExportMeta, options: ExportOptions) -> Callable[[ExportItem], Any]:
    """What one item is in the file: its data, or with provenance its object plus a ``_provenance`` object
    (a text item becomes ``{"text": …, "_provenance": …}``; a non-object json item ``{"value": …}``)."""
    if not _provenance.wanted(meta, options):
        return lambda item: item.data

    def with_provenance(item: ExportItem) -> Any:
        data = item.data
        if isinstance(data, dict):
            if _provenance.OBJECT_KEY in data:
                _provenance.check_names(data, (_provenance.OBJECT_KEY,), "key")
            return {**data, _provenance.OBJECT_KEY: _provenance.as_object(item)}
        key = "text" if meta.output_format == "text" else "value"
        return {key: data, _provenance.OBJECT_KEY: _provenance.as_object(item)}

    return with_provenance


def write_json(items: ItemsFactory, meta: ExportMeta, out: HashingSink, options: ExportOptions) -> int:
    buf = TextBuffer(out)
    appendix = _diversity.report(meta, options)
    envelope = options.envelope or appendix is not None
    if envelope:
        head = dict(meta.as_dict())
        if meta.schema is not None:
            head["schema"] = meta.schema
        buf.write('{"meta": ' + json_text(head) + ', "items": [')
    else:
        buf.write("[")
    value = _item_value(meta, options)
    count = 0
    for item in items():
        buf.write(("\n" if count == 0 else ",\n") + json_text(value(item)))
        count += 1
    if appendix is not None:
        buf.write(f"\n], {json_text(_diversity.KEY)}: {json_text(appendix)}}}\n")
    else:
        buf.write("\n]}\n" if envelope else "\n]\n")
    buf.flush()
    return count


def write_jsonl(items: ItemsFactory, meta: ExportMeta, out: HashingSink, options: ExportOptions) -> int:
    buf = TextBuffer(out)  # one item per line, nothing else: each line is the item itself
    value = _item_value(meta, options)
    count = 0
    for item in items():
        # json.dumps escapes \n and \r inside strings, so one item is exactly one line (U+2028 is fine in JSON).
        buf.write(json_text(value(item), separators=(",", ":")) + "\n")
        count += 1
    buf.flush()
    return count
