"""The formats the public contract accepts are exactly the formats the exporter writes."""

from __future__ import annotations

from llmts_api.exports import EXPORT_FORMATS
from llmts_exporter.writers import FORMATS


def test_contract_formats_are_the_writer_table() -> None:
    assert sorted(EXPORT_FORMATS) == sorted(FORMATS)
