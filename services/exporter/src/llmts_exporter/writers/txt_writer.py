"""Plain text: a header with the job's metadata, then one readable block per item."""

from __future__ import annotations

from . import _diversity, _provenance
from ._model import ExportMeta, ExportOptions, ItemsFactory
from ._sink import HashingSink, TextBuffer
from ._values import as_mapping, json_text, outline, visible_controls

_RULE = "=" * 72


def write_txt(items: ItemsFactory, meta: ExportMeta, out: HashingSink, options: ExportOptions) -> int:
    provenance = _provenance.wanted(meta, options)
    buf = TextBuffer(out)
    rows = meta.display_rows()
    width = max(len(row_label) for row_label, _ in rows)
    buf.write(f"{visible_controls(meta.template_name)} — export\n{_RULE}\n")
    for meta_label, meta_value in rows:
        buf.write(f"{meta_label + ':':<{width + 1}} {visible_controls(meta_value)}\n")
    buf.write(_RULE + "\n")
    count = 0
    for item in items():
        buf.write(f"\n--- Item {item.index} ---\n")
        if meta.output_format == "text":
            text = item.data if isinstance(item.data, str) else json_text(item.data)
            buf.write(visible_controls(text).rstrip("\n") + "\n")
        else:
            for level, label, value in outline(as_mapping(item.data)):
                pad = "  " * level
                name = visible_controls(label)
                if value is None:
                    buf.write(f"{pad}{name}:\n")
                    continue
                lines = visible_controls(value).split("\n")
                buf.write(f"{pad}{name}: {lines[0]}\n")
                for line in lines[1:]:
                    buf.write(f"{pad}  {line}\n")
        if provenance:
            buf.write(f"{_provenance.OBJECT_KEY}: {visible_controls(_provenance.line(item))}\n")
        count += 1
    report = _diversity.report(meta, options)
    if report is not None:
        buf.write(f"\n{_RULE}\n{_diversity.TITLE}\n{_RULE}\n")
        for label, value in _diversity.rows(report):
            buf.write(f"{visible_controls(label)}: {visible_controls(value)}\n")
    buf.flush()
    return count
