"""xml: parsed back with lxml (a parser that resolves no entities and fetches nothing)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from services.exporter.tests.unit.samples import ITEMS, SCRIPT, TEXTS, export, make_meta, text_meta

from llmts_exporter.writers._values import xml_clean
from llmts_exporter.writers.xml_writer import safe_name

PARSER = etree.XMLParser(resolve_entities=False, no_network=True, dtd_validation=False, load_dtd=False)


def parse(raw: bytes) -> Any:
    return etree.fromstring(raw, PARSER)


def test_structure_and_values_round_trip() -> None:
    raw = export("xml", ITEMS)
    assert b"<!DOCTYPE" not in raw
    assert b"<!ENTITY" not in raw
    root = parse(raw)
    assert root.tag == "items"
    items = root.findall("item")
    assert [i.get("index") for i in items] == ["0", "1", "2"]
    first = items[0]
    assert first.findtext("name") == "Чайник электрический «Витязь»"
    assert first.findtext("price/amount") == "2499.5"
    assert first.findtext("price/currency") == "RUB"
    assert first.findtext("in_stock") == "true"
    assert [v.text for v in first.findall("tags/value")] == ["кухня", "новинка"]
    assert items[1].find("price").get("null") == "true"
    assert items[1].findtext("supplier/name") == SCRIPT
    assert items[1].findtext("note") == "line one\nline two | pipe ]]> end"


def test_invalid_keys_made_safe_with_original_kept() -> None:
    third = parse(export("xml", ITEMS)).findall("item")[2]
    first_name = third.find("_1st_name")
    assert first_name is not None
    assert first_name.get("key") == "1st name"
    assert first_name.text == "Иван"
    ab = third.find("a_b")
    assert ab is not None
    assert ab.get("key") == "a:b"
    x = third.find("_x_")
    assert x is not None
    assert x.get("key") == "<x>"
    assert x.findtext("y") == "вложенное"


def test_control_characters_removed() -> None:
    third = parse(export("xml", ITEMS)).findall("item")[2]
    assert third.findtext("supplier/name") == "bell nul esc[31m red"


def test_envelope_adds_meta() -> None:
    root = parse(export("xml", ITEMS, envelope=True))
    assert root.tag == "export"
    assert root.findtext("meta/template_name") == "Каталог товаров"
    assert len(root.findall("items/item")) == 3


def test_text_templates() -> None:
    items = parse(export("xml", TEXTS, text_meta())).findall("item")
    assert items[0].text == TEXTS[0]
    assert items[1].text == TEXTS[1]
    assert items[2].text == "bell nul esc[31m red"


def test_safe_name_examples() -> None:
    assert safe_name("name") == ("name", False)
    assert safe_name("название") == ("название", False)
    assert safe_name("1st name") == ("_1st_name", True)
    assert safe_name("a:b") == ("a_b", True)
    assert safe_name("") == ("_", True)
    assert safe_name("<x>") == ("_x_", True)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=12), st.text(), min_size=1, max_size=4))
def test_any_keys_and_values_give_parsable_xml(data: dict[str, str]) -> None:
    item = parse(export("xml", [data], make_meta(schema=None))).find("item")
    assert item is not None
    children = list(item)
    assert len(children) == len(data)
    for child, (key, value) in zip(children, data.items(), strict=True):
        assert child.get("key", child.tag) == xml_clean(key)
        assert (child.text or "") == xml_clean(value)  # lxml writes CR as &#13;, so it survives
