"""The client's own models against the server's contract (``llmts_api``, imported by this test only): every field
the client requires is one the server always sends, and every example answer of the OpenAPI document is read."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from llmts_api import auth, catalog, exports, generation, templates
from llmts_client import models as client

pytestmark = pytest.mark.unit

PAIRS: list[tuple[type[BaseModel], type[BaseModel]]] = [
    (auth.TokenPairPublic, client.Tokens),
    (auth.UserPublic, client.User),
    (catalog.ModelPublic, client.Model),
    (catalog.ModelsPublic, client.Page[client.Model]),
    (templates.TemplateSummary, client.TemplateSummary),
    (templates.TemplatesPublic, client.Page[client.TemplateSummary]),
    (templates.TemplatePublic, client.Template),
    (templates.LlmDataGenImportPublic, client.Imported),
    (templates.ValidationReportPublic, client.ValidationReport),
    (generation.GenerationAccepted, client.JobAccepted),
    (generation.JobPublic, client.Job),
    (generation.ItemPublic, client.Item),
    (generation.ResultPublic, client.Result),
    (generation.HistoryPublic, client.Page[client.Job]),
    (exports.ExportPublic, client.Export),
    (exports.ExportsPublic, client.Page[client.Export]),
]


def _required(schema: dict[str, Any]) -> set[str]:
    return set(schema.get("required", []))


@pytest.mark.parametrize(("server", "mine"), PAIRS, ids=lambda m: m.__name__)
def test_what_the_client_requires_the_server_always_sends(
    server: type[BaseModel], mine: type[BaseModel]
) -> None:
    server_schema = server.model_json_schema(mode="serialization")
    mine_required = _required(mine.model_json_schema())
    server_required = _required(server_schema)
    if "count" in server_required:  # an older list shape: the client reads count as total
        server_required.add("total")
    missing = mine_required - server_required
    assert not missing, f"{mine.__name__} requires {missing}, which {server.__name__} may leave out"


@pytest.mark.parametrize(("server", "mine"), PAIRS, ids=lambda m: m.__name__)
def test_the_servers_example_answers_are_read(server: type[BaseModel], mine: type[BaseModel]) -> None:
    examples = server.model_json_schema(mode="serialization").get("examples") or []
    for example in examples:
        parsed = mine.model_validate(example)
        assert parsed.model_dump() is not None


def test_a_server_answer_built_from_the_contract_round_trips() -> None:
    job = generation.JobPublic(
        job_id="j1",
        status="completed_with_errors",
        counts=generation.Counts(requested=4, succeeded=3, rejected=1),
        usage=generation.UsagePublic(prompt_tokens=10, completion_tokens=20, cost_usd=0.5),
    )
    page = generation.HistoryPublic(
        items=[job],
        total=1,
        limit=20,
        offset=0,
        totals=generation.HistoryTotals(jobs=1, items=3, rejected=1, attempts=4, usage=job.usage),
    )
    read = client.Page[client.Job].model_validate(page.model_dump(mode="json"))
    assert read.total == 1
    assert read.items[0].terminal
    assert read.items[0].counts.succeeded == 3
    assert read.model_extra is not None
    assert "totals" in read.model_extra


def test_the_client_knows_every_terminal_status_of_the_server() -> None:
    assert client.TERMINAL_STATUSES == generation.TERMINAL_STATUSES


def test_the_job_example_progress_is_read() -> None:
    (example,) = generation.JobPublic.model_json_schema(mode="serialization")["examples"]
    job = client.Job.model_validate(example)
    assert job.progress is not None
    assert job.progress.percent == example["progress"]["percent"]
