"""PDF via reportlab platypus: a title page with the job's metadata, then one block per item.

* Font: DejaVu Sans (Cyrillic, Greek, Latin), found in matplotlib's wheel (``mpl-data/fonts/ttf``, located
  without importing matplotlib) or Debian's ``fonts-dejavu-core``; embedded as subsets with ToUnicode
  maps, so Russian renders and text extraction works.
* The title page uses Paragraphs, so every value put there goes through :func:`rl_escape` (reportlab's
  mini-markup would otherwise interpret ``<b>``, ``<font>``, ``&…;``).
* Item blocks are a light custom flowable: lines laid out once (word wrap by glyph widths, nested fields
  indented) and drawn with ``drawString`` — plain text, never parsed as markup, ~20x cheaper than a
  Paragraph per field. A block longer than the space left splits between lines across pages.
* Streaming: platypus consumes a list from the front; :class:`_LazyFlowables` refills it from the items
  iterator, so only a handful of blocks exist at a time. reportlab keeps each finished page's
  (compressed) content until ``save``, so the items are rendered :data:`CHUNK_ITEMS` at a time, each part a
  small reportlab document that :class:`~._pdfcat.PdfConcatenator` appends to the output at once (objects
  renumbered, one page tree written at the end): memory is bounded by one part, not by the item count.
  Each part embeds its own font subsets (a few tens of KB) and its last page may be partly empty.
"""

from __future__ import annotations

import importlib.util
import io
import itertools
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._model import ExportItem, ExportMeta, ExportOptions, ItemsFactory
from ._pdfcat import PdfConcatenator
from ._sink import HashingSink
from ._values import as_mapping, json_text, outline, visible_controls

FONT = "LLMTS-DejaVuSans"
FONT_BOLD = "LLMTS-DejaVuSans-Bold"
_SIZE = 9.0
_LEADING = 12.0
_INDENT = 12.0
_HEAD_SIZE = 11.0
_HEAD_LEADING = 16.0
_GAP = 8.0


def font_paths() -> tuple[Path, Path]:
    """(regular, bold) DejaVu Sans TTF paths from the installed packages."""
    dirs: list[Path] = []
    spec = importlib.util.find_spec("matplotlib")  # locates the package without importing it
    if spec is not None and spec.submodule_search_locations:
        dirs.extend(Path(p) / "mpl-data" / "fonts" / "ttf" for p in spec.submodule_search_locations)
    dirs.append(Path("/usr/share/fonts/truetype/dejavu"))
    for d in dirs:
        regular, bold = d / "DejaVuSans.ttf", d / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return regular, bold
    raise RuntimeError("no DejaVuSans.ttf found (install matplotlib or fonts-dejavu-core)")


def _register_fonts() -> None:
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    regular, bold = font_paths()
    pdfmetrics.registerFont(TTFont(FONT, str(regular)))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(bold)))
    for italic in (0, 1):
        addMapping(FONT, 0, italic, FONT)
        addMapping(FONT, 1, italic, FONT_BOLD)


def rl_escape(text: str) -> str:
    """Escape reportlab's Paragraph mini-markup (``& < >``) after making control characters visible."""
    return (
        visible_controls(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\n", "<br/>")
    )


class _Wrapper:
    """Greedy word wrap by glyph widths (widths are additive: reportlab applies no kerning)."""

    def __init__(self) -> None:
        from reportlab.pdfbase.pdfmetrics import stringWidth

        self._sw = stringWidth
        self._space = stringWidth(" ", FONT, _SIZE)

    def width(self, text: str, font: str = FONT, size: float = _SIZE) -> float:
        return float(self._sw(text, font, size))

    def lines(self, text: str, first: float, rest: float) -> list[str]:
        """Lines of ``text``: the first at most ``first`` points wide, the others ``rest``."""
        out: list[str] = []
        sw = self._sw
        for para in text.replace("\t", "    ").split("\n"):
            limit = rest if out else first
            if sw(para, FONT, _SIZE) <= limit:
                out.append(para)
                continue
            line, line_w = "", 0.0
            for word in para.split(" "):
                limit = rest if out else first
                w = sw(word, FONT, _SIZE)
                if line and line_w + self._space + w <= limit:
                    line, line_w = line + " " + word, line_w + self._space + w
                    continue
                if line:
                    out.append(line)
                    limit = rest
                while w > limit and len(word) > 1:  # a word wider than the line: cut it
                    cut = self._fit(word, limit)
                    out.append(word[:cut])
                    word = word[cut:]
                    w = sw(word, FONT, _SIZE)
                    limit = rest
                line, line_w = word, w
            out.append(line)
        return out

    def _fit(self, word: str, limit: float) -> int:
        lo, hi = 1, len(word)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._sw(word[:mid], FONT, _SIZE) <= limit:
                lo = mid
            else:
                hi = mid - 1
        return lo


# A laid-out line: (x of the bold label, label, x of the text, text)
Line = tuple[float, str, float, str]


def _make_block_class() -> type:
    from reportlab.platypus import Flowable

    class Block(Flowable):  # type: ignore[misc]
        """One item: a heading line then pre-laid-out lines; splits between lines."""

        def __init__(self, heading: str, lines: list[Line]) -> None:
            super().__init__()
            self.heading = heading
            self.lines = lines

        def _height(self, n: int) -> float:
            return _GAP + _HEAD_LEADING + n * _LEADING

        def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
            self.width = availWidth
            self.height = self._height(len(self.lines))
            return self.width, self.height

        def split(self, availWidth: float, availHeight: float) -> list[Any]:
            fit = int((availHeight - _GAP - _HEAD_LEADING) // _LEADING)
            if fit < 2 or fit >= len(self.lines):
                return []
            return [
                Block(self.heading, self.lines[:fit]),
                Block(self.heading + " (continued)", self.lines[fit:]),
            ]

        def draw(self) -> None:
            c = self.canv
            y = self.height - _GAP - _HEAD_SIZE
            c.setStrokeGray(0.8)
            c.setLineWidth(0.5)
            c.line(0, self.height - _GAP / 2, self.width, self.height - _GAP / 2)
            # One text object per block (not one per drawString): far fewer PDF operators and Python calls.
            t = c.beginText()
            t.setFont(FONT_BOLD, _HEAD_SIZE)
            t.setTextOrigin(0, y)
            t.textOut(self.heading)
            y -= _HEAD_LEADING - _HEAD_SIZE + _SIZE
            font = ""
            for x_label, label, x_text, text in self.lines:
                if label:
                    if font != FONT_BOLD:
                        font = FONT_BOLD
                        t.setFont(font, _SIZE)
                    t.setTextOrigin(x_label, y)
                    t.textOut(label)
                if text:
                    if font != FONT:
                        font = FONT
                        t.setFont(font, _SIZE)
                    t.setTextOrigin(x_text, y)
                    t.textOut(text)
                y -= _LEADING
            c.drawText(t)

    return Block


def _layout(wrapper: _Wrapper, item: ExportItem, text_mode: bool, width: float) -> list[Line]:
    lines: list[Line] = []
    if text_mode:
        text = item.data if isinstance(item.data, str) else json_text(item.data)
        for part in wrapper.lines(visible_controls(text), width, width):
            lines.append((0.0, "", 0.0, part))
        return lines
    for level, label, value in outline(as_mapping(item.data)):
        x = level * _INDENT
        label_text = visible_controls(label) + ":"
        if value is None:
            lines.append((x, label_text, 0.0, ""))
            continue
        label_w = wrapper.width(label_text, FONT_BOLD) + 4
        if label_w > (width - x) * 0.45:  # a long label: value on the next lines
            lines.append((x, label_text, 0.0, ""))
            for part in wrapper.lines(visible_controls(value), width - x - _INDENT, width - x - _INDENT):
                lines.append((x, "", x + _INDENT, part))
            continue
        parts = wrapper.lines(visible_controls(value), width - x - label_w, width - x - _INDENT)
        lines.append((x, label_text, x + label_w, parts[0] if parts else ""))
        lines.extend((x, "", x + _INDENT, part) for part in parts[1:])
    return lines


def _compact_canvas_class() -> type:
    """A Canvas that deflates each finished page's content stream at once.

    reportlab keeps every page's content as an uncompressed str until ``save`` and compresses it then;
    deflating at ``showPage`` keeps ~5x less in memory (and skips the ASCII85 layer: smaller files).
    """
    from reportlab.pdfbase.pdfdoc import PDFStream
    from reportlab.pdfgen.canvas import Canvas

    class _Deflated:
        pdfname = "FlateDecode"

        def encode(self, data: bytes) -> bytes:
            return data  # already deflated

    deflated = [_Deflated()]

    class CompactCanvas(Canvas):  # type: ignore[misc]
        def showPage(self) -> None:
            super().showPage()
            page = self._doc.Pages.pages[-1]
            text = page.stream
            if text and not page.Contents:
                stream = PDFStream(content=zlib.compress(text.encode("utf8"), 6), filters=deflated)
                stream.__Comment__ = "page stream"
                page.Contents = stream
                page.stream = None

    return CompactCanvas


class _LazyFlowables(list[Any]):
    """A list platypus can consume from the front while we refill it from an iterator."""

    def __init__(self, head: list[Any], source: Iterator[Any]) -> None:
        super().__init__(head)
        self._source: Iterator[Any] | None = source

    def __len__(self) -> int:
        n = super().__len__()
        if n < 4 and self._source is not None:
            more = list(itertools.islice(self._source, 16))
            if more:
                self.extend(more)
            else:
                self._source = None
            n = super().__len__()
        return n


CHUNK_ITEMS = 2000
"""Items rendered per reportlab document; each part is appended to the output as soon as it is rendered."""


def _cover(meta: ExportMeta, width: float) -> list[Any]:
    """The first page: the template's name and a table of the export's facts."""
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import PageBreak, Paragraph, Spacer, Table, TableStyle

    title_style = ParagraphStyle("t", fontName=FONT_BOLD, fontSize=20, leading=26, spaceAfter=14)
    cell = ParagraphStyle("c", fontName=FONT, fontSize=10, leading=13)
    cell_bold = ParagraphStyle("cb", parent=cell, fontName=FONT_BOLD)
    rows = [
        [Paragraph(rl_escape(k), cell_bold), Paragraph(rl_escape(v), cell)] for k, v in meta.display_rows()
    ]
    table = Table(rows, colWidths=[45 * mm, width - 45 * mm])
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.lightgrey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
            ]
        )
    )
    return [Paragraph(rl_escape(meta.template_name), title_style), Spacer(1, 4 * mm), table, PageBreak()]


def write_pdf(items: ItemsFactory, meta: ExportMeta, out: HashingSink, options: ExportOptions) -> int:
    from reportlab.lib.pagesizes import A4, letter
    from reportlab.lib.units import mm
    from reportlab.platypus import SimpleDocTemplate

    _register_fonts()
    page = A4 if options.pdf_page_size == "A4" else letter

    def new_doc(buf: io.BytesIO) -> Any:
        return SimpleDocTemplate(
            buf,
            pagesize=page,
            leftMargin=18 * mm,
            rightMargin=18 * mm,
            topMargin=16 * mm,
            bottomMargin=16 * mm,
            title=visible_controls(meta.template_name),
            author="LLM Template System",
            subject=f"Export of job {meta.job_id}",
        )

    width = float(new_doc(io.BytesIO()).width)
    head = _cover(meta, width)

    block = _make_block_class()
    wrapper = _Wrapper()
    text_mode = meta.output_format == "text"
    counter = [0]
    pages_before = [0]

    def blocks() -> Iterator[Any]:
        for item in items():
            counter[0] += 1
            yield block(f"Item {item.index}", _layout(wrapper, item, text_mode, width))

    def footer(canvas: Any, _doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 8)
        canvas.setFillGray(0.45)
        canvas.drawRightString(page[0] - 18 * mm, 9 * mm, str(pages_before[0] + canvas.getPageNumber()))
        canvas.restoreState()

    # reportlab keeps every page until save: render CHUNK_ITEMS items per document and append each document's
    # pages to the output at once (the last page of a part may be partly empty).
    source = blocks()
    cat = PdfConcatenator(out)
    canvasmaker = _compact_canvas_class()
    first = True
    while True:
        if first:
            part_head, take = head, CHUNK_ITEMS
        else:
            nxt = next(source, None)
            if nxt is None:
                break
            part_head, take = [nxt], CHUNK_ITEMS - 1
        buf = io.BytesIO()
        new_doc(buf).build(
            _LazyFlowables(part_head, itertools.islice(source, take)),
            onFirstPage=footer,
            onLaterPages=footer,
            canvasmaker=canvasmaker,
        )
        pages_before[0] += cat.add(buf.getvalue(), keep_info=first)
        first = False
    cat.close(id_seed=meta.job_id)
    return counter[0]
