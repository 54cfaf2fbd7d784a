"""md (checked as text and rendered with python-markdown) and txt."""

from __future__ import annotations

import markdown
from hypothesis import given, settings
from hypothesis import strategies as st
from services.exporter.tests.unit.samples import ITEMS, SCRIPT, TEXTS, export, make_meta, text_meta

from llmts_exporter.writers.md_writer import md_escape


def test_md_nested_items_as_sections() -> None:
    md = export("md", ITEMS).decode()
    assert md.startswith("# Каталог товаров\n")
    assert md.count("\n## Item ") == 3
    assert "- **name:** Чайник электрический «Витязь»" in md
    assert "  - **city:** Москва" in md  # nested fields indented
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert "line one<br>line two \\| pipe \\]\\]&gt; end" in md


def test_md_flat_items_as_a_table_with_pipes_and_newlines_escaped() -> None:
    data = [{"имя": "Анна | Мария", "заметка": "строка1\nстрока2"}, {"имя": SCRIPT, "заметка": None}]
    md = export("md", data, make_meta(schema=None)).decode()
    lines = md.splitlines()
    table = [line for line in lines if line.startswith("| ")]
    assert table[0] == "| \\# | имя | заметка |"
    assert table[1] == "| 0 | Анна \\| Мария | строка1<br>строка2 |"
    assert all(line.count(" | ") == 2 for line in table)
    html = markdown.markdown(md, extensions=["tables"])
    assert "<script>" not in html
    assert "<td>Анна | Мария</td>" in html


def test_md_rendered_has_no_live_markup() -> None:
    html = markdown.markdown(export("md", ITEMS, make_meta(template_name=SCRIPT)).decode())
    assert "<script>" not in html
    assert "<b>bold</b>" not in html
    assert "&lt;script&gt;" in html


def test_md_text_templates() -> None:
    md = export("md", TEXTS, text_meta()).decode()
    assert TEXTS[0] in md
    assert "&lt;script&gt;" in md
    assert "<script>" not in md
    assert "bell\\x07" in md


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_md_escape_keeps_a_cell_on_one_line_and_in_one_column(value: str) -> None:
    cell = md_escape(value)
    assert "\n" not in cell
    assert "\r" not in cell
    assert "<" not in cell.replace("<br>", "")
    assert ">" not in cell.replace("<br>", "")
    html = markdown.markdown(f"| a | b |\n|---|---|\n| {cell} | end |\n", extensions=["tables"])
    assert html.count("<td") == 2, html
    assert "<td>end</td>" in html
    assert "<script" not in html


def test_txt_blocks_with_indentation() -> None:
    txt = export("txt", ITEMS).decode()
    assert txt.startswith("Каталог товаров — export\n")
    assert "Model:             gpt-4o-mini" in txt
    assert (
        "--- Item 0 ---\nname: Чайник электрический «Витязь»\nprice:\n  amount: 2499.5\n  currency: RUB\n"
        in txt
    )
    assert "note: line one\n  line two | pipe ]]> end\n" in txt
    assert "\x1b" not in txt
    assert "\x00" not in txt
    assert "bell\\x07 nul\\x00 esc\\x1b[31m red" in txt


def test_txt_text_templates() -> None:
    txt = export("txt", TEXTS, text_meta()).decode()
    assert f"--- Item 0 ---\n{TEXTS[0]}\n" in txt
    assert SCRIPT in txt
    assert "\x07" not in txt
