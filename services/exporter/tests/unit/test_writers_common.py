"""Format table, filenames, streaming behaviour and the column plan."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from services.exporter.tests.unit.samples import SCHEMA, TEXTS, export, make_meta, text_meta

from llmts_exporter.writers import FORMATS, ExportItem, safe_filename, write_export
from llmts_exporter.writers._plan import Plan, fill_interpreted

ALL = ["json", "jsonl", "csv", "xlsx", "pdf", "md", "html", "xml", "txt", "parquet"]


def test_format_table() -> None:
    assert sorted(FORMATS) == sorted(ALL)
    assert FORMATS["csv"].content_type.startswith("text/csv")
    assert FORMATS["xlsx"].extension == "xlsx"
    assert FORMATS["parquet"].content_type == "application/vnd.apache.parquet"


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown export format"):
        write_export("docx", lambda: iter(()), make_meta(), io.BytesIO())
    with pytest.raises(ValueError, match="unknown export format"):
        safe_filename("x", "job", "exe")


@pytest.mark.parametrize("fmt", ALL)
def test_every_format_handles_no_items_and_text_items(fmt: str) -> None:
    assert export(fmt, []) or fmt == "jsonl"  # an empty JSON Lines file is valid
    assert export(fmt, TEXTS, text_meta())
    assert export(fmt, ["корень не объект", 42], make_meta(schema=None))


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "md", "html", "xml", "txt", "parquet"])
def test_output_is_streamed_while_items_are_read(fmt: str) -> None:
    out = io.BytesIO()
    written_before_end: list[int] = []

    def items() -> Iterator[ExportItem]:
        for i in range(30_000):
            yield ExportItem(i, {"name": f"товар {i}", "n": i, "nested": {"x": i}})
        written_before_end.append(out.tell())

    write_export(fmt, items, make_meta(schema=None), out)
    assert written_before_end[-1] > 0  # the writing pass (an earlier pass may only discover columns)


def test_safe_filename_russian() -> None:
    ascii_name, star = safe_filename("Каталог товаров", "job-0042", "csv", dt.date(2026, 12, 6))
    assert ascii_name == "katalog-tovarov-2026-12-06-job0042.csv"
    assert star.startswith("UTF-8''")
    assert unquote(star.removeprefix("UTF-8''")) == "каталог-товаров-2026-12-06-job0042.csv"


def test_safe_filename_from_template_name_date_and_short_id() -> None:
    ascii_name, star = safe_filename("Quiz questions", "A2635676-2e8e-51de", "xlsx", dt.date(2026, 12, 6))
    assert ascii_name == "quiz-questions-2026-12-06-a2635676.xlsx"
    assert star == "UTF-8''quiz-questions-2026-12-06-a2635676.xlsx"
    assert safe_filename("Ça va? Überall!", "j", "md")[0] == "ca-va-uberall-j.md"
    assert safe_filename("***", "", "json")[0] == "export-job.json"


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        '"; rm -rf /',
        "a\r\nContent-Type: text/html",
        "..",
        "",
        "\x00\x07",
        "dir\\..\\win.ini",
    ],
)
def test_safe_filename_has_no_path_quotes_or_controls(name: str) -> None:
    ascii_name, star = safe_filename(name, "job/../1", "xlsx")
    for fname in (ascii_name, unquote(star.removeprefix("UTF-8''"))):
        assert fname.endswith(".xlsx")
        assert not any(c in fname for c in '/\\"\r\n\x00;:')
        assert not fname.startswith(".")
        assert ".." not in fname
    assert ascii_name.isascii()
    assert all(c.isalnum() or c in "!#$&+-.^_`|~%" for c in star.removeprefix("UTF-8''"))


@given(st.text(), st.text(max_size=30))
def test_safe_filename_property(name: str, job: str) -> None:
    ascii_name, star = safe_filename(name, job, "pdf")
    assert ascii_name.isascii()
    assert ascii_name.endswith(".pdf")
    assert not any(c in ascii_name for c in '/\\"\r\n')
    assert star.startswith("UTF-8''")
    assert not any(c in star for c in '/\\" \r\n')


def test_plan_resolves_refs_and_nullable_unions() -> None:
    plan = Plan.from_schema(SCHEMA)
    assert [c.name for c in plan.columns][:3] == ["name", "price.amount", "price.currency"]
    kinds = {c.name: c.kind for c in plan.columns}
    assert kinds["released"] == "datetime"
    assert kinds["note"] == "string"
    assert not plan.closed  # the root is open


def test_plan_all_of_merges_properties() -> None:
    schema = {
        "allOf": [{"type": "object", "properties": {"a": {"type": "string"}}}, {"properties": {"b": {}}}]
    }
    assert [c.name for c in Plan.from_schema(schema).columns] == ["a", "b"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.dictionaries(st.sampled_from(["a", "b", "c", "d.e"]), json_values, max_size=4), max_size=5)
)
def test_compiled_extractor_matches_the_interpreted_one(rows: list[dict[str, Any]]) -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "object", "properties": {"b": {"type": "string"}}}},
    }
    plan = Plan.from_schema(schema)
    plan.discover(ExportItem(i, r) for i, r in enumerate(rows))
    extract = plan.extractor()
    for row in rows:
        assert extract(row) == fill_interpreted(plan, row)
