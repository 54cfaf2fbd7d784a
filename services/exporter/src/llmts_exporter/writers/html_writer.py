"""HTML: one standalone page (inline CSS, no scripts, no external resources); every value is escaped."""

from __future__ import annotations

import html
from typing import Any

from . import _diversity, _provenance
from ._layout import table_plan
from ._model import ExportMeta, ExportOptions, ItemsFactory
from ._sink import HashingSink, TextBuffer
from ._values import as_mapping, is_scalar, json_text, scalar_text, visible_controls

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:2rem;color:#1d1d1f}
h1{font-size:1.6rem;margin:0 0 1rem}h2{font-size:1.1rem;margin:1.5rem 0 .5rem;color:#444}
table{border-collapse:collapse;font-size:.9rem}th,td{border:1px solid #d0d0d5;padding:.3rem .5rem;
vertical-align:top;text-align:left;white-space:pre-wrap}thead th{background:#f2f2f5;position:sticky;top:0}
table.meta th{background:#f7f7fa;font-weight:600}section.item{border-top:1px solid #e0e0e5}
dl{margin:.2rem 0 .2rem 1rem}dt{font-weight:600;float:left;clear:left;margin-right:.4rem}
dt::after{content:":"}dd{margin:0 0 .2rem 0;white-space:pre-wrap}dd>dl,dd>ol,dd>ul{clear:both}
.text{white-space:pre-wrap;line-height:1.45}.null{color:#999}.provenance{color:#666;font-size:.85rem}
""".strip()


def esc(value: str) -> str:
    """``html.escape`` (quotes too) after making control characters visible."""
    return html.escape(visible_controls(value), quote=True)


def _value_html(value: Any) -> str:
    if isinstance(value, dict):
        if not value:
            return "{}"
        parts = ["<dl>"]
        for key, sub in value.items():
            parts.append(f"<dt>{esc(str(key))}</dt><dd>{_value_html(sub)}</dd>")
        parts.append("</dl>")
        return "".join(parts)
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        tag = "ul" if all(is_scalar(v) for v in value) else "ol"
        return f"<{tag}>" + "".join(f"<li>{_value_html(v)}</li>" for v in value) + f"</{tag}>"
    if value is None:
        return '<span class="null">null</span>'
    return esc(scalar_text(value))


def write_html(items: ItemsFactory, meta: ExportMeta, out: HashingSink, options: ExportOptions) -> int:
    provenance = _provenance.wanted(meta, options)
    buf = TextBuffer(out)
    title = esc(meta.template_name)
    buf.write(
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title} — export</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f'<header><h1>{title}</h1>\n<table class="meta">\n'
    )
    for meta_label, meta_value in meta.display_rows():
        buf.write(f"<tr><th>{esc(meta_label)}</th><td>{esc(meta_value)}</td></tr>\n")
    buf.write("</table></header>\n<main>\n")

    count = 0
    plan = table_plan(items, meta)
    if plan is not None:
        head = "".join(f"<th>{esc(c.name)}</th>" for c in plan.columns)
        if provenance:
            head += f"<th>{esc(_provenance.OBJECT_KEY)}</th>"
        buf.write(f'<table class="items">\n<thead><tr><th>#</th>{head}</tr></thead>\n<tbody>\n')
        extract = plan.extractor()
        for item in items():
            cells = "".join(f"<td>{esc(scalar_text(v))}</td>" for v in extract(item.data))
            if provenance:
                cells += f'<td class="provenance">{esc(_provenance.line(item))}</td>'
            buf.write(f"<tr><td>{item.index}</td>{cells}</tr>\n")
            count += 1
        buf.write("</tbody>\n</table>\n")
    else:
        for item in items():
            buf.write(f'<section class="item" id="item-{item.index}">\n<h2>Item {item.index}</h2>\n')
            if meta.output_format == "text":
                text = item.data if isinstance(item.data, str) else json_text(item.data)
                buf.write(f'<div class="text">{esc(text)}</div>\n')
            else:
                buf.write(_value_html(as_mapping(item.data)) + "\n")
            if provenance:
                key, text = esc(_provenance.OBJECT_KEY), esc(_provenance.line(item))
                buf.write(f'<p class="provenance">{key}: {text}</p>\n')
            buf.write("</section>\n")
            count += 1
    report = _diversity.report(meta, options)
    if report is not None:
        buf.write(f'<section class="diversity">\n<h2>{esc(_diversity.TITLE)}</h2>\n<table class="meta">\n')
        for label, value in _diversity.rows(report):
            buf.write(f"<tr><th>{esc(label)}</th><td>{esc(value)}</td></tr>\n")
        buf.write("</table>\n</section>\n")
    buf.write("</main>\n</body>\n</html>\n")
    buf.flush()
    return count
