"""JSON (array, or ``{"meta": …, "items": […]}``) and JSON Lines, streamed item by item."""

from __future__ import annotations

from ._model import ExportMeta, ExportOptions, ItemsFactory
from ._sink import HashingSink, TextBuffer
from ._values import json_text


def write_json(items: ItemsFactory, meta: ExportMeta, out: HashingSink, options: ExportOptions) -> int:
    buf = TextBuffer(out)
    if options.envelope:
        head = dict(meta.as_dict())
        if meta.schema is not None:
            head["schema"] = meta.schema
        buf.write('{"meta": ' + json_text(head) + ', "items": [')
    else:
        buf.write("[")
    count = 0
    for item in items():
        buf.write(("\n" if count == 0 else ",\n") + json_text(item.data))
        count += 1
    buf.write("\n]}\n" if options.envelope else "\n]\n")
    buf.flush()
    return count


def write_jsonl(items: ItemsFactory, meta: ExportMeta, out: HashingSink, options: ExportOptions) -> int:
    del meta, options  # one item per line, nothing else: each line is the item itself
    buf = TextBuffer(out)
    count = 0
    for item in items():
        # json.dumps escapes \n and \r inside strings, so one item is exactly one line (U+2028 is fine in JSON).
        buf.write(json_text(item.data, separators=(",", ":")) + "\n")
        count += 1
    buf.flush()
    return count
