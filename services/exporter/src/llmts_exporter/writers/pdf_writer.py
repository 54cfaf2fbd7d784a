"""PDF via reportlab: item cards drawn straight onto the canvas, page numbers, Cyrillic, bounded memory.

* Font: DejaVu Sans (Cyrillic, Greek, Latin), found in matplotlib's wheel (``mpl-data/fonts/ttf``, located
  without importing matplotlib) or Debian's ``fonts-dejavu-core``; embedded as subsets with ToUnicode
  maps, so Russian renders and text extraction works.
* Page 1 opens with the template's name and one line of facts (date, model, items); ``pdf_title_page``
  puts a full title page with the job's metadata table first instead (platypus Paragraphs, every value
  through :func:`rl_escape`: reportlab's mini-markup would otherwise interpret ``<b>``, ``&…;``).
* Items are compact cards (:mod:`._pdfcards`): a heading from the item's first text field, then one
  row per field, labels in a column sized to the item. A card that does not fit the rest of a page starts
  the next one; a card longer than a page continues over pages. Footer: template name and page number.
* Speed: no platypus for the items. Lines are laid out once and written as PDF text operators directly
  into the page's content (one text object per page; font subsets/escaping of repeated short strings such
  as labels cached), which is what makes 100k items take a fraction of platypus's time.
* Memory: reportlab keeps each finished page's (deflated, see :func:`_compact_canvas_class`) content until
  ``save``, so every :data:`CHUNK_ITEMS` items the part is saved as a small document and
  :class:`~._pdfcat.PdfConcatenator` appends it to the output (objects renumbered, one page tree written at
  the end): memory is bounded by one part, not by the item count. Parts end on a page break, so no page is
  left half empty; each part embeds its own font subsets (a few tens of KB).
"""

from __future__ import annotations

import importlib.util
import io
import zlib
from pathlib import Path
from typing import Any

from . import _provenance
from ._model import ExportMeta, ExportOptions, ItemsFactory
from ._pdfcards import GAP, LEADING, SIZE, Line, Wrapper, card
from ._pdfcat import PdfConcatenator
from ._sink import HashingSink
from ._values import visible_controls

FONT = "LLMTS-DejaVuSans"
FONT_BOLD = "LLMTS-DejaVuSans-Bold"
_MM = 72 / 25.4
_MARGIN_X, _MARGIN_Y, _FOOTER_Y = 18 * _MM, 16 * _MM, 9 * _MM
_TITLE_SIZE = 16.0
_SHORT = 40


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


class _Encoder:
    """Text → ``(font resource name, escaped PDF string)`` runs for one reportlab document.

    Font subsets are assigned by reportlab's ``TTFont.splitString`` (so the subsets, widths and ToUnicode
    maps it embeds at ``save`` are right), but only once per new character: reportlab's per-character Python
    loop is the cost of drawing text. Text whose characters all sit in the first subset (Latin, Cyrillic and
    punctuation do) is encoded with one ``str.translate``; other text goes through ``splitString``.
    """

    def __init__(self, doc: Any) -> None:
        from reportlab.lib.rl_accel import escapePDF
        from reportlab.pdfbase.pdfmetrics import getFont

        self._doc = doc
        self._fonts = (getFont(FONT), getFont(FONT_BOLD))
        self._escape = escapePDF
        self._known: tuple[set[str], set[str]] = (set(), set())
        self._first: tuple[dict[int, int], dict[int, int]] = ({}, {})
        """Per font: code point → code, for the characters assigned to subset 0."""
        self._first_chars: tuple[set[str], set[str]] = (set(), set())
        self._name0: list[str | None] = [None, None]
        self._short: tuple[dict[str, list[tuple[str, str]]], ...] = ({}, {})

    def _learn(self, bold: bool, chars: set[str]) -> None:
        font, doc = self._fonts[bold], self._doc
        font.splitString("".join(sorted(chars)), doc)
        assigned = font.state[doc].assignments
        first = self._first[bold]
        for ch in chars:
            code = ord(ch)
            n = assigned.get(32 if code == 0xA0 else code, 0 if code not in font.face.charToGlyph else None)
            if n is not None and n < 256:
                first[code] = n
                self._first_chars[bold].add(ch)
        self._known[bold].update(chars)

    def runs(self, bold: bool, text: str) -> list[tuple[str, str]]:
        # Labels, headings and short values (enums, flags, numbers, names) recur: their runs are cached.
        if bold or len(text) <= _SHORT:
            cache = self._short[bold]
            hit = cache.get(text)
            if hit is None:
                if len(cache) >= 8192:
                    cache.clear()
                hit = cache[text] = self._runs(bold, text)
            return hit
        return self._runs(False, text)

    def _runs(self, bold: bool, text: str) -> list[tuple[str, str]]:
        known = self._known[bold]
        chars = set(text)
        if not chars <= known:
            self._learn(bold, chars - known)
        if chars <= self._first_chars[bold]:
            name = self._name0[bold]
            if name is None:
                name = self._name0[bold] = self._fonts[bold].getSubsetInternalName(0, self._doc)
            return [(name, self._escape(text.translate(self._first[bold]).encode("latin-1")))]
        font, doc, esc = self._fonts[bold], self._doc, self._escape
        return [
            (font.getSubsetInternalName(sub, doc), esc(chunk)) for sub, chunk in font.splitString(text, doc)
        ]


class _Widths(dict[str, float]):
    """Advance width (in 1/1000 em) of each character of a font; unknown characters get the default."""

    def __init__(self, font: Any) -> None:
        super().__init__((chr(code), float(w)) for code, w in font.face.charWidths.items())
        self.default = float(font.face.defaultWidth)

    def __missing__(self, key: str) -> float:
        return self.default


def _text_width() -> Any:
    """``(text, bold, size) → points``: a sum of cached character widths (reportlab applies no kerning)."""
    from reportlab.pdfbase.pdfmetrics import getFont

    tables = (_Widths(getFont(FONT)).__getitem__, _Widths(getFont(FONT_BOLD)).__getitem__)

    def width(text: str, bold: bool, size: float) -> float:
        return sum(map(tables[bold], text)) * size / 1000

    return width


class _Pages:
    """Draws lines onto pages of the current part; starts parts and hands finished ones to the output."""

    def __init__(self, meta: ExportMeta, options: ExportOptions, cat: PdfConcatenator, width: Any) -> None:
        from reportlab.lib.pagesizes import A4, letter

        self.meta = meta
        self.size = A4 if options.pdf_page_size == "A4" else letter
        self.cat = cat
        self.text_width = width
        self.width = self.size[0] - 2 * _MARGIN_X
        self.top = self.size[1] - _MARGIN_Y
        self.canvas: Any = None
        self.enc: _Encoder | None = None
        self.pages = 0
        self.in_part = 0
        self.info_kept = False
        self.ops: list[str] = []
        self.rules: list[str] = []
        self.y = self.top
        self.font: tuple[str, float] = ("", 0.0)
        self.footer_name = visible_controls(meta.template_name)

    def begin_part(self) -> None:
        buf = io.BytesIO()
        canvas = _compact_canvas_class()(buf, pagesize=self.size)
        canvas.setTitle(visible_controls(self.meta.template_name))
        canvas.setAuthor("LLM Template System")
        canvas.setSubject(f"Export of job {self.meta.job_id}")
        self.canvas, self.buf, self.enc = canvas, buf, _Encoder(canvas._doc)
        self._begin_page()

    def _begin_page(self) -> None:
        self.ops = ["BT"]
        self.rules = []
        self.font = ("", 0.0)
        self.y = self.top
        self.pages += 1
        self.ops.append("0.45 g")
        self.text(_MARGIN_X, _FOOTER_Y, False, 8.0, self.footer_name[:90])
        number = str(self.pages)
        self.text(
            self.size[0] - _MARGIN_X - self.text_width(number, False, 8.0), _FOOTER_Y, False, 8.0, number
        )
        self.ops.append("0 g")

    def text(self, x: float, y: float, bold: bool, size: float, text: str) -> None:
        assert self.enc is not None
        ops = self.ops
        ops.append(f"1 0 0 1 {x:.2f} {y:.2f} Tm")
        for name, escaped in self.enc.runs(bold, text):
            if self.font != (name, size):
                self.font = (name, size)
                ops.append(f"{name} {size:g} Tf")
            ops.append(f"({escaped}) Tj")

    def end_page(self) -> None:
        code = self.canvas._code
        code.append("\n".join(self.ops))
        code.append("ET")
        if self.rules:
            code.append("0.8 G 0.5 w")
            code.extend(self.rules)
        self.canvas.showPage()
        self.ops = []

    def end_part(self) -> None:
        self.end_page()
        self.canvas.save()
        self.cat.add(self.buf.getvalue(), keep_info=not self.info_kept)
        self.info_kept = True
        self.canvas = self.enc = None
        self.in_part = 0

    def new_page(self) -> None:
        """Next page; past :data:`CHUNK_ITEMS` items the part is handed to the output first."""
        if self.in_part >= CHUNK_ITEMS:
            self.end_part()
            self.begin_part()
            return
        self.end_page()
        self._begin_page()

    def lines(self, lines: list[Line], x0: float, leading: float = LEADING) -> None:
        """Draw lines from the cursor down, continuing on new pages."""
        placed: list[tuple[str, Line]] = []
        for line in lines:
            if self.y - leading < _MARGIN_Y:
                self._emit(placed, x0)
                placed = []
                self.new_page()
            self.y -= leading
            placed.append((f" {self.y + 3.0:.2f} Tm", line))
        self._emit(placed, x0)

    def _emit(self, placed: list[tuple[str, Line]], x0: float) -> None:
        """Text operators for lines placed on this page, in reading order (what text extraction and
        copy-paste follow). The hot loop of the writer."""
        assert self.enc is not None
        runs, ops, font = self.enc.runs, self.ops, self.font
        for tm, line in placed:
            for x, bold, size, chunk in line:
                if not chunk:
                    continue
                ops.append(f"1 0 0 1 {x0 + x:.2f}{tm}")
                for name, escaped in runs(bold, chunk):
                    if font[0] != name or font[1] != size:
                        font = (name, size)
                        ops.append(f"{name} {size:g} Tf")
                    ops.append(f"({escaped}) Tj")
        self.font = font

    def card(self, lines: list[Line]) -> None:
        height = GAP + len(lines) * LEADING
        room = self.y - _MARGIN_Y
        if height > room and (height <= self.top - _MARGIN_Y or room < 4 * LEADING):
            self.new_page()
        if self.y < self.top:
            mid = self.y - GAP / 2
            self.rules.append(f"{_MARGIN_X:.2f} {mid:.2f} m {_MARGIN_X + self.width:.2f} {mid:.2f} l S")
        self.y -= GAP
        self.lines(lines, _MARGIN_X)


def _header(pages: _Pages, wrap: Wrapper, meta: ExportMeta) -> None:
    """The top of page 1: the template's name and one line of facts."""
    title = wrap.lines(visible_controls(meta.template_name), pages.width, bold=True, size=_TITLE_SIZE)
    pages.lines([((0.0, True, _TITLE_SIZE, t),) for t in title], _MARGIN_X, _TITLE_SIZE * 1.3)
    facts = [meta.created_at.date().isoformat(), meta.model, f"{meta.succeeded} items"]
    if meta.template_version is not None:
        facts.insert(0, f"version {meta.template_version}")
    facts.append(f"job {meta.job_id}")
    pages.ops.append("0.4 g")
    sub = wrap.lines(visible_controls(" · ".join(facts)), pages.width)
    pages.lines([((0.0, False, SIZE, t),) for t in sub], _MARGIN_X)
    pages.ops.append("0 g")
    pages.y -= LEADING / 2


def _title_page(meta: ExportMeta, options: ExportOptions) -> bytes:
    """A separate one-page document: the template's name and the export's facts (``pdf_title_page``)."""
    from reportlab.lib.pagesizes import A4, letter
    from reportlab.platypus import SimpleDocTemplate

    size = A4 if options.pdf_page_size == "A4" else letter
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=size,
        leftMargin=_MARGIN_X,
        rightMargin=_MARGIN_X,
        topMargin=_MARGIN_Y,
        bottomMargin=_MARGIN_Y,
        title=visible_controls(meta.template_name),
        author="LLM Template System",
        subject=f"Export of job {meta.job_id}",
    )
    flowables = _cover(meta, float(doc.width))[:-1]  # no page break: the cards start a new part anyway

    def footer(canvas: Any, _doc: Any) -> None:
        canvas.setFont(FONT, 8)
        canvas.setFillGray(0.45)
        canvas.drawRightString(size[0] - _MARGIN_X, _FOOTER_Y, "1")

    doc.build(flowables, onFirstPage=footer, canvasmaker=_compact_canvas_class())
    return buf.getvalue()


def write_pdf(items: ItemsFactory, meta: ExportMeta, out: HashingSink, options: ExportOptions) -> int:
    _register_fonts()
    wrap = Wrapper(_text_width())
    cat = PdfConcatenator(out)
    pages = _Pages(meta, options, cat, wrap.width)
    if options.pdf_title_page:
        pages.pages += cat.add(_title_page(meta, options), keep_info=True)
        pages.info_kept = True
    pages.begin_part()
    if not options.pdf_title_page:
        _header(pages, wrap, meta)
    count = 0
    width = pages.width
    provenance = _provenance.wanted(meta, options)
    for item in items():
        note = f"{_provenance.OBJECT_KEY}: {_provenance.line(item)}" if provenance else None
        pages.card(card(wrap, item.index + 1, item.data, width, note=note))
        pages.in_part += 1
        count += 1
    pages.end_part()
    cat.close(id_seed=meta.job_id)
    return count
