"""The exporter lays files out by the item schema only when the items were validated against it: GenerationStarted
now carries the template's schema for every json job, with ``item_schema_enforced``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from llmts_common.contracts import GenerationStarted, ModelRef
from llmts_exporter.domain.jobs import started_fields

SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}}


@pytest.mark.parametrize(("enforced", "projected"), [(True, SCHEMA), (None, SCHEMA), (False, None)])
def test_only_an_enforced_schema_is_projected(enforced: bool | None, projected: object) -> None:
    event = GenerationStarted(
        job_id="j", user_id="u", requested=1, model=ModelRef(provider="ollama", id="m"), template_id="t",
        template_version=1, started_at=datetime.now(UTC), output_format="json", item_schema=SCHEMA,
        item_schema_enforced=enforced,
    )  # fmt: skip
    assert started_fields(event)["item_schema"] == projected
