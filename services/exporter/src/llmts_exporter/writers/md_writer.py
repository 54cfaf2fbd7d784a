"""Markdown: a table when the items are flat, else one section per item (nested fields as nested lists).

Every value is escaped: backslash-escapes for the Markdown punctuation that would change the rendering
(``\\ ` * _ [ ] |``), HTML entities for ``& < >`` (Markdown passes raw HTML through, so ``<script>`` must not
survive), ``<br>`` for line breaks (a table row is one line). Text-template items are kept as Markdown
(LLM prose often is), with only ``& < >`` escaped.
"""

from __future__ import annotations

import re

from . import _diversity, _provenance
from ._layout import table_plan
from ._model import ExportMeta, ExportOptions, ItemsFactory
from ._sink import HashingSink, TextBuffer
from ._values import as_mapping, json_text, outline, scalar_text, visible_controls

_MD_SPECIAL = re.compile(r"[\\`*_\[\]|<>&\r\n]")
_HTML_ONLY = re.compile(r"[<>&]")
_REPLACEMENTS = {"<": "&lt;", ">": "&gt;", "&": "&amp;", "\n": "<br>", "\r": ""}


def _sub(m: re.Match[str]) -> str:
    c = m.group()
    return _REPLACEMENTS.get(c) or "\\" + c


def md_escape(text: str) -> str:
    """Escape one value for a table cell or a list item (always a single line)."""
    return _MD_SPECIAL.sub(_sub, visible_controls(text).replace("\r\n", "\n"))


def _html_only(text: str) -> str:
    return _HTML_ONLY.sub(_sub, text)


def write_md(items: ItemsFactory, meta: ExportMeta, out: HashingSink, options: ExportOptions) -> int:
    provenance = _provenance.wanted(meta, options)
    buf = TextBuffer(out)
    buf.write(f"# {md_escape(meta.template_name)}\n\n")
    for meta_label, meta_value in meta.display_rows():
        buf.write(f"- **{meta_label}:** {md_escape(meta_value)}\n")
    buf.write("\n")

    count = 0
    plan = table_plan(items, meta)
    if plan is not None:
        header = ["\\#", *(md_escape(c.name) for c in plan.columns)]
        if provenance:
            header.append(md_escape(_provenance.OBJECT_KEY))
        buf.write("| " + " | ".join(header) + " |\n")
        buf.write("|" + "---|" * len(header) + "\n")
        extract = plan.extractor()
        for item in items():
            cells = [str(item.index), *(md_escape(scalar_text(v)) for v in extract(item.data))]
            if provenance:
                cells.append(md_escape(_provenance.line(item)))
            buf.write("| " + " | ".join(cells) + " |\n")
            count += 1
        _appendix(buf, meta, options)
        buf.flush()
        return count

    for item in items():
        buf.write(f"## Item {item.index}\n\n")
        if meta.output_format == "text":
            text = item.data if isinstance(item.data, str) else json_text(item.data)
            buf.write(_html_only(visible_controls(text)).rstrip("\n") + "\n\n")
        else:
            for level, label, value in outline(as_mapping(item.data)):
                rest = "" if value is None else " " + md_escape(value)
                buf.write(f"{'  ' * level}- **{md_escape(label)}:**{rest}\n")
            buf.write("\n")
        if provenance:
            buf.write(f"*{md_escape(_provenance.OBJECT_KEY)}: {md_escape(_provenance.line(item))}*\n\n")
        count += 1
    _appendix(buf, meta, options)
    buf.flush()
    return count


def _appendix(buf: TextBuffer, meta: ExportMeta, options: ExportOptions) -> None:
    report = _diversity.report(meta, options)
    if report is not None:
        buf.write(f"\n## {_diversity.TITLE}\n\n")
        for label, value in _diversity.rows(report):
            buf.write(f"- **{md_escape(label)}:** {md_escape(value)}\n")
