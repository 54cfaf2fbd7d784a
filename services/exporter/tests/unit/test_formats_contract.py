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


def test_public_provenance_option_reaches_the_writer_as_sent() -> None:
    """``auto`` is the default (left out of the command); true/false travel as booleans; anything else is a 422."""
    import pydantic

    from llmts_api.exports import ExportCreate
    from llmts_exporter.handlers import parse_options

    assert ExportCreate(job_id="j").options.model_dump(exclude_defaults=True) == {}
    for sent, parsed in (("auto", "auto"), (True, True), (False, False)):
        options = ExportCreate.model_validate({"job_id": "j", "options": {"provenance": sent}}).options
        writer, problem = parse_options("csv", options.model_dump(exclude_defaults=True))
        assert problem is None
        assert writer is not None
        assert writer.provenance == parsed
    for bad in ("sometimes", 2, None):
        with pytest.raises(pydantic.ValidationError):
            ExportCreate.model_validate({"job_id": "j", "options": {"provenance": bad}})
