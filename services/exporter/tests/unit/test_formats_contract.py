"""The formats the public contract accepts are exactly the formats the exporter writes."""

from __future__ import annotations

import pytest

from llmts_api.exports import EXPORT_FORMATS
from llmts_exporter.writers import FORMATS


def test_contract_formats_are_the_writer_table() -> None:
    assert sorted(EXPORT_FORMATS) == sorted(FORMATS)


def test_contract_options_are_the_writer_options() -> None:
    """Every option the gateway accepts reaches a writer field of the same name and default."""
    import dataclasses

    from llmts_api.exports import ExportOptions as PublicOptions
    from llmts_exporter.writers import ExportOptions

    writer = {f.name: f.default for f in dataclasses.fields(ExportOptions)}
    public = {name: field.default for name, field in PublicOptions.model_fields.items()}
    assert public == writer
    assert PublicOptions(nested="explode", explode_field="options").explode_field == "options"
    with pytest.raises(ValueError, match="needs nested=explode"):
        PublicOptions(explode_field="options")
