"""html: parsed back with html.parser; every value is text, never markup."""

from __future__ import annotations

from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st
from services.exporter.tests.unit.samples import ITEMS, SCRIPT, TEXTS, export, make_meta, text_meta


class Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(raw: bytes) -> Collector:
    c = Collector()
    c.feed(raw.decode())
    c.close()
    return c


def test_standalone_page_with_inline_css() -> None:
    raw = export("html", ITEMS)
    page = parse(raw)
    assert raw.startswith(b"<!DOCTYPE html>")
    assert "style" in page.tags
    assert "link" not in page.tags
    assert b'<meta charset="utf-8">' in raw


def test_script_shows_as_text_never_as_element() -> None:
    page = parse(export("html", ITEMS, make_meta(template_name=SCRIPT)))
    assert "script" not in page.tags
    text = "".join(page.text)
    assert SCRIPT in text
    assert "Kettle <b>bold</b> & co" in text
    assert "b" not in page.tags


def test_nested_items_as_sections_with_russian() -> None:
    page = parse(export("html", ITEMS))
    assert page.tags.count("section") == 3
    text = "".join(page.text)
    for word in ("Каталог товаров", "Чайник электрический «Витязь»", "Москва", "вложенное", "1st name"):
        assert word in text
    assert "bell\\x07 nul\\x00 esc\\x1b[31m red" in text


def test_flat_items_as_a_table() -> None:
    data = [{"имя": "Анна", "возраст": 30}, {"имя": SCRIPT, "возраст": 41}]
    page = parse(export("html", data, make_meta(schema=None)))
    assert "table" in page.tags
    assert "section" not in page.tags
    assert page.tags.count("tr") >= 3
    assert SCRIPT in "".join(page.text)


def test_text_templates() -> None:
    page = parse(export("html", TEXTS, text_meta()))
    text = "".join(page.text)
    assert TEXTS[0] in text
    assert SCRIPT in text
    assert "script" not in page.tags


@settings(max_examples=200, deadline=None)
@given(st.text(), st.text(max_size=10))
def test_any_string_stays_text(value: str, key: str) -> None:
    page = parse(export("html", [{key or "k": value}], make_meta(schema=None, template_name=value)))
    assert set(page.tags) <= {
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "header",
        "h1",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "main",
        "section",
        "h2",
        "dl",
        "dt",
        "dd",
    }
