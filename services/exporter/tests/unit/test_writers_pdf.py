"""pdf: text extracted with pypdf; Russian must come out as Russian."""

from __future__ import annotations

import io
from typing import Any

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


def test_header_and_item_cards_render_russian() -> None:
    raw = export("pdf", ITEMS)
    assert raw.startswith(b"%PDF-")
    pages, text = text_of(raw)
    assert pages == 1  # no page spent on metadata: three cards fit under the header
    words = flat(text)
    for expected in (
        "Каталог товаров",
        "version 3 · 2025-06-01 · gpt-4o-mini · 3 items · job job-0042",
        "#1 Чайник электрический «Витязь»",  # the first text field heads the card
        "#3 +79991234567",
        "supplier name: ООО Ромашка · city: Москва",  # a nested object on one line
        "tags кухня, новинка",
        "in_stock true",
        "price —",  # null
    ):
        assert expected in words
    assert "Item 0" not in words


def test_title_page_is_optional() -> None:
    raw = export("pdf", ITEMS, pdf_title_page=True)
    reader = PdfReader(io.BytesIO(raw))
    first = flat(reader.pages[0].extract_text())
    for expected in ("Каталог товаров", "gpt-4o-mini", "job-0042", "Requested", "Cost, USD"):
        assert expected in first
    assert "#1" not in first
    rest = flat(" ".join(p.extract_text() for p in reader.pages[1:]))
    assert "#1 Чайник электрический «Витязь»" in rest
    assert "version 3 ·" not in rest  # the one-line header is only for files without a title page


def test_quiz_items_are_compact_cards_with_page_numbers() -> None:
    quiz = [
        {
            "question": f"Вопрос {i}: какая столица у страны номер {i}?",
            "options": [{"label": c, "text": f"Город {c}{i}"} for c in "ABCD"],
            "answer": "B",
            "explanation": "Потому что так написано в учебнике географии, глава " + str(i),
        }
        for i in range(10)
    ]
    reader = PdfReader(
        io.BytesIO(export("pdf", quiz, make_meta(schema=None, template_name="Quiz questions")))
    )
    assert len(reader.pages) <= 2  # was 5 pages of key: value lines plus a metadata page
    texts = [p.extract_text() for p in reader.pages]
    words = flat(" ".join(texts))
    assert "#10 Вопрос 9: какая столица у страны номер 9?" in words
    assert "options label: A · text: Город A0" in words
    # the footer (drawn first on each page): the template's name and the page number
    assert [t.split("\n")[0].split() for t in texts] == [
        ["Quiz", "questions", str(n)] for n in range(1, len(texts) + 1)
    ]


def test_markup_and_scripts_show_as_text() -> None:
    words = flat(text_of(export("pdf", ITEMS, make_meta(template_name="<b>Жирный</b> & <i>x</i>")))[1])
    assert SCRIPT in words
    assert "Kettle <b>bold</b> & co" in words
    assert "<b>Жирный</b> & <i>x</i>" in words
    titled = export("pdf", ITEMS, make_meta(template_name="<b>Жирный</b> & <i>x</i>"), pdf_title_page=True)
    assert "<b>Жирный</b> & <i>x</i>" in flat(text_of(titled)[1])  # the title page (Paragraph) escapes it


def test_control_characters_are_made_visible() -> None:
    words = flat(text_of(export("pdf", ITEMS))[1])
    assert "bell\\x07 nul\\x00 esc\\x1b[31m red" in words


def test_values_are_aligned_in_a_column_beside_bold_labels() -> None:
    reader = PdfReader(io.BytesIO(export("pdf", ITEMS[:1])))
    positions: dict[str, tuple[float, str]] = {}

    def visit(text: str, cm: object, tm: list[float], font: dict[str, Any] | None, size: object) -> None:
        if text.strip():
            positions.setdefault(text.strip(), (tm[4], str((font or {}).get("/BaseFont", ""))))

    reader.pages[0].extract_text(visitor_text=visit)
    assert positions["quantity"][0] == positions["note"][0]
    assert positions["12"][0] == positions["name: ООО Ромашка · city: Москва"][0]
    assert positions["12"][0] > positions["quantity"][0]
    assert "Bold" in positions["quantity"][1]
    assert "Bold" not in positions["12"][1]


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
    items = [
        {"name": f"Товар №{i}", "note": f"заметка {i} <b>x</b> 5 0 R " + "слово " * 120} for i in range(30)
    ]
    raw = export("pdf", items, make_meta(template_name="Каталог (5 0 R) «тест»"), pdf_title_page=True)
    reader = PdfReader(io.BytesIO(raw))
    assert reader.metadata is not None
    assert reader.metadata.title == "Каталог (5 0 R) «тест»"
    texts = [flat(p.extract_text()) for p in reader.pages]
    words = " ".join(texts)
    assert sum("gpt-4o-mini" in t for t in texts) == 1  # the title page comes first, once
    positions = [words.index(f"#{i + 1} Товар №{i} ") for i in range(30)]
    assert positions == sorted(positions)  # every item, in order
    for i in (0, 6, 7, 29):
        assert f"заметка {i} <b>x</b> 5 0 R" in words
    # page numbers (the footer is drawn first on each page) continue across parts
    numbers = [p.extract_text().split("\n")[0].split()[-1] for p in reader.pages]
    assert numbers == [str(n) for n in range(1, len(texts) + 1)]
    assert len(texts) >= 6  # title page + at least one page per part


def test_without_items_there_is_one_page() -> None:
    pages, text = text_of(export("pdf", []))
    assert pages == 1
    assert "Каталог товаров" in flat(text)
    assert text_of(export("pdf", [], pdf_title_page=True))[0] == 2


def test_concatenator_rejects_what_it_cannot_copy() -> None:
    with pytest.raises(PdfFormatError):
        PdfConcatenator(io.BytesIO()).add(b"%PDF-1.5\nnot really\n")


def test_text_beyond_the_first_font_subset_and_missing_glyphs() -> None:
    """More distinct characters than one 256-code subset holds go through reportlab's own splitting;
    characters DejaVu lacks (CJK) become the missing-glyph box without breaking the page."""
    greek = "".join(chr(c) for c in range(0x3B1, 0x3CA))
    extended = "".join(chr(c) for c in range(0x100, 0x180))
    armenian = "".join(chr(c) for c in range(0x561, 0x587))
    items = [{"a": greek, "b": extended, "c": armenian, "d": "漢字 and ascii", "e": "Ёлка"} for _ in range(3)]
    words = flat(text_of(export("pdf", items, make_meta(schema=None)))[1])
    for expected in (greek, extended[:40], armenian, "and ascii", "Ёлка"):
        assert expected in words
