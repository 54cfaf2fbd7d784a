"""pdf: text extracted with pypdf; Russian must come out as Russian."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader
from services.exporter.tests.unit.samples import ITEMS, SCRIPT, TEXTS, export, make_meta, text_meta

from llmts_exporter.writers import pdf_writer
from llmts_exporter.writers._pdfcat import PdfConcatenator, PdfFormatError
from llmts_exporter.writers.pdf_writer import font_paths


def text_of(raw: bytes) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(raw))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def flat(text: str) -> str:
    return " ".join(text.split())


def test_font_with_cyrillic_is_found() -> None:
    regular, bold = font_paths()
    assert regular.name == "DejaVuSans.ttf"
    assert bold.name == "DejaVuSans-Bold.ttf"


def test_title_page_and_items_render_russian() -> None:
    raw = export("pdf", ITEMS)
    assert raw.startswith(b"%PDF-")
    pages, text = text_of(raw)
    assert pages >= 2
    words = flat(text)
    for expected in (
        "Каталог товаров",
        "gpt-4o-mini",
        "job-0042",
        "Чайник электрический «Витязь»",
        "Москва",
        "ООО Ромашка",
    ):
        assert expected in words
    assert "Item 0" in words
    assert "Item 2" in words


def test_markup_and_scripts_show_as_text() -> None:
    words = flat(text_of(export("pdf", ITEMS, make_meta(template_name="<b>Жирный</b> & <i>x</i>")))[1])
    assert SCRIPT in words
    assert "Kettle <b>bold</b> & co" in words
    assert "<b>Жирный</b> & <i>x</i>" in words  # the title page (Paragraph) escapes mini-markup


def test_control_characters_are_made_visible() -> None:
    words = flat(text_of(export("pdf", ITEMS))[1])
    assert "bell\\x07 nul\\x00 esc\\x1b[31m red" in words


def test_nested_fields_are_indented() -> None:
    reader = PdfReader(io.BytesIO(export("pdf", ITEMS[:1])))
    positions: dict[str, float] = {}

    def visit(text: str, cm: object, tm: list[float], font: object, size: object) -> None:
        if text.strip():
            positions.setdefault(text.strip(), tm[4])

    reader.pages[1].extract_text(visitor_text=visit)
    assert positions["amount:"] > positions["price:"]


def test_long_item_splits_across_pages() -> None:
    long_text = " ".join(f"слово{i}" for i in range(3000))
    pages, text = text_of(export("pdf", [{"essay": long_text}], make_meta(schema=None)))
    assert pages >= 4
    assert "слово0" in text
    assert "слово2999" in text


def test_text_templates() -> None:
    words = flat(text_of(export("pdf", TEXTS, text_meta()))[1])
    assert "Жили-были дед да баба." in words
    assert SCRIPT in words
    assert "Сказки" in words


def test_a_large_export_is_rendered_in_parts_and_concatenated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts of CHUNK_ITEMS items are separate reportlab documents joined into one valid PDF."""
    monkeypatch.setattr(pdf_writer, "CHUNK_ITEMS", 7)
    items = [{"name": f"Товар №{i}", "note": f"заметка {i} <b>x</b> 5 0 R"} for i in range(30)]
    raw = export("pdf", items, make_meta(template_name="Каталог (5 0 R) «тест»"))
    reader = PdfReader(io.BytesIO(raw))
    assert reader.metadata is not None
    assert reader.metadata.title == "Каталог (5 0 R) «тест»"
    texts = [flat(p.extract_text()) for p in reader.pages]
    words = " ".join(texts)
    assert "Каталог (5 0 R) «тест»" in texts[0]  # the title page comes first, once
    assert sum("gpt-4o-mini" in t for t in texts) == 1
    positions = [words.index(f"Item {i} ") for i in range(30)]
    assert positions == sorted(positions)  # every item, in order
    for i in (0, 6, 7, 29):
        assert f"Товар №{i}" in words
        assert f"заметка {i} <b>x</b> 5 0 R" in words
    # page numbers (the footer is drawn first on each page) continue across parts
    numbers = [p.extract_text().split("\n")[0].strip() for p in reader.pages]
    assert numbers == [str(n) for n in range(1, len(texts) + 1)]
    assert len(texts) >= 5  # title page + at least one page per part


def test_concatenating_without_items_gives_the_title_page_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf_writer, "CHUNK_ITEMS", 3)
    pages, text = text_of(export("pdf", []))
    assert pages == 1
    assert "Каталог товаров" in flat(text)


def test_concatenator_rejects_what_it_cannot_copy() -> None:
    with pytest.raises(PdfFormatError):
        PdfConcatenator(io.BytesIO()).add(b"%PDF-1.5\nnot really\n")
