"""The ``diversity`` export option (issue 18 #5): the job's diversity report as an appendix — json/xml envelope,
xlsx sheet, md/html/txt section, parquet file metadata; nothing in csv/jsonl/pdf, nothing when not asked for or
when the job has no report."""

from __future__ import annotations

import io
import json
from typing import Any

import openpyxl
import pyarrow.parquet as pq
import pytest
from lxml import etree
from services.exporter.tests.unit.samples import ITEMS, export, make_meta

from llmts_api.exports import ExportOptions as ApiExportOptions
from llmts_common.contracts import GenerationCompleted, Usage
from llmts_exporter.domain.jobs import terminal_fields

REPORT: dict[str, Any] = {
    "items": 3,
    "items_total": 3,
    "fields": [],
    "distinct_1": 0.8125,
    "distinct_2": 0.9,
    "near_duplicate_threshold": 0.8,
    "near_duplicate_rate": 0.0,
    "near_duplicates_rejected": 2,
    "categories": {
        "tone": {
            "values": {
                "formal": {"count": 2, "share": 0.6667, "target": 0.5},
                "friendly": {"count": 1, "share": 0.3333, "target": 0.5},
            },
            "max_dev_pp": 16.67,
        }
    },
}


def meta(report: dict[str, Any] | None = REPORT) -> Any:
    return make_meta(diversity=report)


def test_json_gets_the_envelope_with_the_report_after_the_items() -> None:
    doc = json.loads(export("json", ITEMS, meta(), diversity=True))
    assert len(doc["items"]) == len(ITEMS)
    assert doc["meta"]["job_id"] == "job-0042"
    assert doc["diversity"] == REPORT
    assert list(doc) == ["meta", "items", "diversity"]
    assert isinstance(json.loads(export("json", ITEMS, meta())), list)  # not asked for: the plain array
    assert isinstance(json.loads(export("json", ITEMS, meta(None), diversity=True)), list)  # no report


def test_xml_gets_a_diversity_element() -> None:
    root = etree.fromstring(export("xml", ITEMS, meta(), diversity=True))
    assert root.tag == "export"
    assert [child.tag for child in root] == ["meta", "items", "diversity"]
    assert root.find("diversity/near_duplicates_rejected").text == "2"
    assert etree.fromstring(export("xml", ITEMS, meta())).tag == "items"


def test_xlsx_gets_a_diversity_sheet() -> None:
    wb = openpyxl.load_workbook(io.BytesIO(export("xlsx", ITEMS, meta(), diversity=True)))
    assert wb.sheetnames[-1] == "diversity"
    rows = dict(wb["diversity"].iter_rows(values_only=True))
    assert rows["Distinct-1"] == "0.8125"
    assert rows["Near-duplicates rejected"] == "2"
    assert rows["tone = formal"] == "count 2 · share 0.6667 · target 0.5"
    assert rows["tone: max deviation, pp"] == "16.67"
    plain = openpyxl.load_workbook(io.BytesIO(export("xlsx", ITEMS, meta())))
    assert "diversity" not in plain.sheetnames


@pytest.mark.parametrize("fmt", ["md", "html", "txt"])
def test_documents_get_a_diversity_section_after_the_items(fmt: str) -> None:
    text = export(fmt, ITEMS, meta(), diversity=True).decode()
    assert "Diversity" in text
    assert text.index("Diversity") > text.index("Item 0" if fmt != "md" else "#")
    assert "tone = formal" in text
    assert "count 2 · share 0.6667 · target 0.5" in text
    assert "Diversity" not in export(fmt, ITEMS, meta()).decode()


def test_parquet_keeps_the_report_in_the_file_metadata() -> None:
    table = pq.read_table(io.BytesIO(export("parquet", ITEMS, meta(), diversity=True)))
    assert json.loads(table.schema.metadata[b"llmts.diversity"]) == REPORT
    plain = pq.read_table(io.BytesIO(export("parquet", ITEMS, meta())))
    assert b"llmts.diversity" not in plain.schema.metadata


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_row_formats_are_unchanged(fmt: str) -> None:
    assert export(fmt, ITEMS, meta(), diversity=True) == export(fmt, ITEMS, meta())


def test_the_projection_keeps_the_report_of_a_completed_job_and_the_api_takes_the_option() -> None:
    done = GenerationCompleted(
        job_id="j", user_id="u", status="completed", requested=3, succeeded=3, rejected=0, attempts=3,
        usage=Usage(), duration_seconds=1.0, diversity=REPORT,
    )  # fmt: skip
    assert terminal_fields(done)["diversity"] == REPORT
    assert "diversity" not in terminal_fields(done.model_copy(update={"diversity": None}))
    assert ApiExportOptions.model_validate({"diversity": True}).diversity is True
