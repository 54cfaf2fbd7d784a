"""The ``provenance`` option in every format: which model made each item (a fallback chain may switch models
mid-job), its index, task, attempts and tokens; ``auto`` shows it only when the job used more than one model."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from typing import Any

import openpyxl
import pyarrow.parquet as pq
import pytest
from lxml import etree
from pypdf import PdfReader
from services.exporter.tests.unit.samples import ITEMS, TEXTS, Factory, export, make_meta, text_meta

from llmts_exporter.writers import ExportItem, ExportMeta, ExportOptions

PRIMARY = "llama3.2:latest"
BACKUP = "openai/gpt-4o-mini"
MODELS = (f"ollama/{PRIMARY}", BACKUP)
COLUMNS = [
    "_model",
    "_provider",
    "_index",
    "_target",
    "_task",
    "_task_index",
    "_attempts",
    "_prompt_tokens",
    "_completion_tokens",
    "_cost_usd",
    "_row",
    "_dataset_id",
    "_seed_row",
    "_sampled",
    "_judge",
]


def made(i: int) -> dict[str, Any]:
    """Item 0 from the primary model (Ollama), the others from the fallback (the default provider)."""
    first = i == 0
    return {
        "model": PRIMARY if first else BACKUP,
        **({"provider": "ollama"} if first else {}),
        "target": i,
        "task": 0,
        "task_index": i,
        "attempts": 1 + i,
        "prompt_tokens": 100 + i,
        "completion_tokens": 50 + i,
        "cost_usd": 0.0 if first else 0.00025,
        **({"row": {"topic": "Физика"}} if i == 2 else {}),
        # issue 18: the seed row, the sampled values and the judge's scores (none for item 1)
        **({"dataset_id": "ds-1", "seed_row": 7 - i, "sampled": {"tone": "formal"}} if i != 1 else {}),
        **({"judge": {"quality": 4.5}} if i == 2 else {}),
    }


def factory(data: list[Any]) -> Factory:
    f = Factory(data)
    f.items = [ExportItem(i, d, made(i)) for i, d in enumerate(data)]
    return f


def two_models(**overrides: Any) -> ExportMeta:
    return make_meta(models=MODELS, **overrides)


def texts_meta() -> ExportMeta:
    return dataclasses.replace(text_meta(), models=MODELS)


def rows_of_csv(raw: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))


# --------------------------------------------------------------------------------------------- auto / on / off


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "xml", "md", "txt", "html"])
def test_auto_shows_nothing_for_a_one_model_job_and_false_hides_it(fmt: str) -> None:
    plain = export(fmt, Factory(ITEMS), make_meta(models=(BACKUP,)))
    assert export(fmt, factory(ITEMS), make_meta(models=(BACKUP,))) == plain  # auto, one model
    assert b"_provenance" not in plain
    assert b"_model" not in plain
    hidden = export(fmt, Factory(ITEMS), two_models(), provenance=False)
    assert export(fmt, factory(ITEMS), two_models(), provenance=False) == hidden
    assert export(fmt, factory(ITEMS), two_models()) != hidden  # auto, two models: shown


def test_options_accept_only_true_false_auto() -> None:
    assert ExportOptions().provenance == "auto"
    for bad in ("yes", 1, None):
        with pytest.raises(ValueError, match="provenance"):
            ExportOptions(provenance=bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------- machine formats


def test_json_appends_a_provenance_object_to_each_item() -> None:
    items = json.loads(export("json", factory(ITEMS), two_models()))
    assert [i["_provenance"]["model"] for i in items] == [PRIMARY, BACKUP, BACKUP]
    first = items[0]
    assert list(first)[-1] == "_provenance"
    assert {k: first[k] for k in ITEMS[0]} == ITEMS[0]
    assert first["_provenance"] == {
        "model": PRIMARY,
        "provider": "ollama",
        "index": 0,
        "target": 0,
        "task": 0,
        "task_index": 0,
        "attempts": 1,
        "prompt_tokens": 100,
        "completion_tokens": 50,
        "cost_usd": 0.0,
        "dataset_id": "ds-1",
        "seed_row": 7,
        "sampled": {"tone": "formal"},
    }
    assert "provider" not in items[1]["_provenance"]  # unknown values are left out
    assert "seed_row" not in items[1]["_provenance"]
    assert items[2]["_provenance"]["row"] == {"topic": "Физика"}
    assert items[2]["_provenance"]["judge"] == {"quality": 4.5}


def test_json_envelope_meta_lists_the_models() -> None:
    doc = json.loads(export("json", factory(ITEMS), two_models(), envelope=True))
    assert doc["meta"]["models"] == list(MODELS)
    assert doc["items"][1]["_provenance"]["attempts"] == 2


def test_jsonl_text_items_become_objects() -> None:
    lines = export("jsonl", factory(TEXTS), text_meta(), provenance=True).decode().splitlines()
    first = json.loads(lines[0])
    assert first == {"text": TEXTS[0], "_provenance": json.loads(json.dumps(first["_provenance"]))}
    assert first["_provenance"]["model"] == PRIMARY


def test_provenance_true_shows_it_for_a_one_model_job() -> None:
    items = json.loads(export("json", factory(ITEMS), make_meta(models=(BACKUP,)), provenance=True))
    assert items[0]["_provenance"]["index"] == 0


def test_an_item_key_named_like_provenance_fails_instead_of_being_overwritten() -> None:
    data = [{"name": "x", "_provenance": "the model's own"}]
    with pytest.raises(ValueError, match="_provenance"):
        export("json", factory(data), two_models(schema=None))
    with pytest.raises(ValueError, match="_model"):
        export("csv", factory([{"_model": "mine"}]), two_models(schema=None))


def test_items_without_provenance_give_empty_cells() -> None:
    """Items projected before provenance was kept: only the index is known."""
    rows = rows_of_csv(export("csv", Factory(ITEMS), two_models(), provenance=True))
    assert [r["_index"] for r in rows] == ["0", "1", "2"]
    assert {r["_model"] for r in rows} == {""}


# --------------------------------------------------------------------------------------------- tabular formats


def test_csv_has_underscore_columns_after_the_items() -> None:
    rows = rows_of_csv(export("csv", factory(ITEMS), two_models()))
    header = list(rows[0])
    assert header[-len(COLUMNS) :] == COLUMNS
    assert header[0] == "name"
    assert [r["_model"] for r in rows] == [PRIMARY, BACKUP, BACKUP]
    assert [r["_provider"] for r in rows] == ["ollama", "", ""]
    assert [r["_attempts"] for r in rows] == ["1", "2", "3"]
    assert rows[2]["_row"] == '{"topic": "Физика"}'
    assert rows[0]["_row"] == ""
    assert [r["_seed_row"] for r in rows] == ["7", "", "5"]
    assert [r["_dataset_id"] for r in rows] == ["ds-1", "", "ds-1"]
    assert rows[0]["_sampled"] == '{"tone": "formal"}'
    assert [r["_judge"] for r in rows] == ["", "", '{"quality": 4.5}']


def test_csv_explode_repeats_provenance_on_each_element_row() -> None:
    rows = rows_of_csv(export("csv", factory(ITEMS), two_models(), nested="explode", explode_field="tags"))
    assert [(r["item"], r["tags"], r["_model"]) for r in rows] == [
        ("0", "кухня", PRIMARY),
        ("0", "новинка", PRIMARY),
        ("1", "", BACKUP),
        ("2", "x", BACKUP),
    ]


def test_csv_text_items() -> None:
    rows = rows_of_csv(export("csv", factory(TEXTS), texts_meta()))
    assert list(rows[0])[:3] == ["index", "text", "_model"]
    assert rows[1]["_model"] == BACKUP


def test_xlsx_columns_and_meta_sheet() -> None:
    wb = openpyxl.load_workbook(io.BytesIO(export("xlsx", factory(ITEMS), two_models())))
    rows = list(wb["items"].iter_rows(values_only=True))
    header = list(rows[0])
    assert header[-len(COLUMNS) :] == COLUMNS
    at = header.index("_model")
    assert [r[at] for r in rows[1:]] == [PRIMARY, BACKUP, BACKUP]
    assert [r[header.index("_attempts")] for r in rows[1:]] == [1, 2, 3]
    assert [r[header.index("_seed_row")] for r in rows[1:]] == [7, None, 5]
    assert rows[3][header.index("_judge")] == '{"quality": 4.5}'
    meta = dict(wb["meta"].iter_rows(values_only=True))
    assert meta["Models"] == ", ".join(MODELS)


def test_xlsx_explode_and_text() -> None:
    raw = export("xlsx", factory(ITEMS), two_models(), nested="explode")
    rows = list(openpyxl.load_workbook(io.BytesIO(raw))["items"].iter_rows(values_only=True))
    assert rows[0][-len(COLUMNS) :] == tuple(COLUMNS)
    assert [r[rows[0].index("_model")] for r in rows[1:]] == [PRIMARY, PRIMARY, BACKUP, BACKUP]
    raw = export("xlsx", factory(TEXTS), texts_meta())
    rows = list(openpyxl.load_workbook(io.BytesIO(raw))["items"].iter_rows(values_only=True))
    assert rows[0][:3] == ("index", "text", "_model")
    assert rows[3][2] == BACKUP


@pytest.mark.parametrize("nested", [None, "flatten", "json", "explode"])
def test_parquet_typed_columns(nested: str | None) -> None:
    raw = export("parquet", factory(ITEMS), two_models(), nested=nested)
    table = pq.read_table(io.BytesIO(raw))
    assert table.column_names[-len(COLUMNS) :] == COLUMNS
    types = {name: str(table.schema.field(name).type) for name in COLUMNS}
    assert types["_model"] == "string"
    assert types["_attempts"] == "int64"
    assert types["_cost_usd"] == "double"
    assert types["_seed_row"] == "int64"
    assert types["_dataset_id"] == "string"
    assert types["_sampled"] == "string"  # objects as JSON text
    assert types["_judge"] == "string"
    rows = table.column("_seed_row").to_pylist()
    assert rows[0] == 7
    assert rows[-1] == 5
    assert None in rows
    models = table.column("_model").to_pylist()
    first = 2 if nested == "explode" else 1  # item 0 has two tags: two rows
    assert models[:first] == [PRIMARY] * first
    assert set(models[first:]) == {BACKUP}
    assert json.loads(table.schema.metadata[b"llmts.meta"])["models"] == list(MODELS)


def test_parquet_text_items() -> None:
    table = pq.read_table(io.BytesIO(export("parquet", factory(TEXTS), texts_meta())))
    assert table.column("_model").to_pylist() == [PRIMARY, BACKUP, BACKUP]
    assert table.column("_row").to_pylist() == [None, None, '{"topic": "Физика"}']


# --------------------------------------------------------------------------------------------- xml


def test_xml_attributes_on_each_item() -> None:
    root = etree.fromstring(export("xml", factory(ITEMS), two_models()))
    items = root.findall("item")
    assert [i.get("_model") for i in items] == [PRIMARY, BACKUP, BACKUP]
    assert items[0].get("_provider") == "ollama"
    assert items[1].get("_provider") is None
    assert items[1].get("_attempts") == "2"
    assert items[1].get("index") == "1"
    assert items[1].get("_index") is None  # the item's own index attribute says it
    assert json.loads(items[2].get("_row")) == {"topic": "Физика"}
    assert items[0].find("name").text == ITEMS[0]["name"]


def test_xml_text_items_keep_their_text() -> None:
    root = etree.fromstring(export("xml", factory(TEXTS), texts_meta()))
    first = root.find("item")
    assert first is not None
    assert first.text == TEXTS[0]
    assert first.get("_model") == PRIMARY


# --------------------------------------------------------------------------------------------- readable formats

FLAT = [{"q": "2+2?", "a": "4"}, {"q": "Столица?", "a": "Москва"}, {"q": "*bold*", "a": "_x_"}]


def test_md_table_gets_a_provenance_cell_and_sections_a_line() -> None:
    table = export("md", factory(FLAT), two_models(schema=None)).decode()
    assert "| \\# | q | a | \\_provenance |" in table
    assert f"model: {PRIMARY} · provider: ollama · index: 0" in table
    assert "Model:** ollama/llama3.2:latest, openai/gpt-4o-mini" in table
    sections = export("md", factory(ITEMS), two_models()).decode()
    assert sections.count("*\\_provenance: model: ") == 3
    assert f"model: {BACKUP} · index: 2" in sections


def test_html_table_cell_and_section_line() -> None:
    table = export("html", factory(FLAT), two_models(schema=None)).decode()
    assert "<th>_provenance</th>" in table
    assert f'<td class="provenance">model: {PRIMARY} · provider: ollama · index: 0' in table
    sections = export("html", factory(ITEMS), two_models()).decode()
    assert sections.count('<p class="provenance">_provenance: model: ') == 3
    assert "row: {&quot;topic&quot;: &quot;Физика&quot;}" in sections  # escaped


def test_txt_line_per_item() -> None:
    text = export("txt", factory(TEXTS), texts_meta()).decode()
    lines = [ln for ln in text.splitlines() if ln.startswith("_provenance: ")]
    assert len(lines) == 3
    assert lines[1].startswith(f"_provenance: model: {BACKUP} · index: 1 · target: 1")


def test_pdf_card_ends_with_the_provenance_line() -> None:
    raw = export("pdf", factory(ITEMS), two_models())
    text = " ".join("\n".join(p.extract_text() for p in PdfReader(io.BytesIO(raw)).pages).split())
    assert text.count("_provenance: model:") == 3
    assert f"model: {PRIMARY} · provider: ollama · index: 0" in text
    plain = export("pdf", Factory(ITEMS))
    assert b"_provenance" not in plain
    assert "_provenance" not in " ".join(p.extract_text() for p in PdfReader(io.BytesIO(plain)).pages)
