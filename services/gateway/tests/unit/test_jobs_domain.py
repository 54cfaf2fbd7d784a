"""Pure rules of generation jobs at the gateway (``llmts_gateway.domain.jobs``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from services.gateway.tests.fakes import SCHEMA, template_doc

from llmts_api.generation import GenerationCreate, HistoryQuery
from llmts_common.contracts import ModelRef, TemplateSnapshot
from llmts_common.errors import AppError, Conflict, NotFound, ServiceUnavailable, Unprocessable
from llmts_gateway.domain import jobs
from llmts_gateway.domain.ports import Answer


def snapshot(**over: Any) -> TemplateSnapshot:
    return jobs.template_from_answer("tpl1", Answer(200, template_doc(**over)))


def create(**fields: Any) -> GenerationCreate:
    return GenerationCreate.model_validate({"template_id": "tpl1", **fields})


# ------------------------------------------------------------------------------------------------ template
def test_a_template_answer_becomes_the_snapshot_the_job_runs_with() -> None:
    tpl = snapshot(tasks=[{"product": "a lamp"}], output={"format": "json"})
    assert (tpl.id, tpl.version, tpl.name, tpl.owner_id) == ("tpl1", 3, "Reviews", "alice")
    assert tpl.output_format == "json"
    assert tpl.json_schema == SCHEMA
    assert tpl.prompts.user == "Review {{ index }} of {{ product }}."
    assert tpl.validation.mode == "strict"
    assert tpl.variables == {"product": "a kettle"}
    assert tpl.tasks == [{"product": "a lamp"}]
    assert tpl.model == ModelRef(provider="openrouter", id="openai/gpt-4o-mini")


def test_a_text_template_without_schema_or_model() -> None:
    tpl = snapshot(output={"format": "text"}, schema=None, model=None)
    assert (tpl.output_format, tpl.json_schema, tpl.model) == ("text", None, None)


@pytest.mark.parametrize("status", [403, 404])
def test_a_refused_or_missing_template_is_template_not_found(status: int) -> None:
    with pytest.raises(NotFound) as info:
        jobs.template_from_answer("tpl9", Answer(status, {"error": {}}))
    assert (info.value.status_code, info.value.code) == (404, "template_not_found")
    assert info.value.details == {"template_id": "tpl9"}


def test_a_refused_token_is_401() -> None:
    with pytest.raises(AppError) as info:
        jobs.template_from_answer("tpl1", Answer(401, {}))
    assert (info.value.status_code, info.value.code) == (401, "unauthorized")


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_failing_templates_service_is_unavailable(status: int) -> None:
    with pytest.raises(ServiceUnavailable) as info:
        jobs.template_from_answer("tpl1", Answer(status, {}))
    assert info.value.status_code == 503
    assert info.value.details == {"service": "templates"}


def test_another_client_error_of_the_templates_service_is_422() -> None:
    with pytest.raises(Unprocessable, match=r"could not be read \(400\)"):
        jobs.template_from_answer("tpl1", Answer(400, {}))


@pytest.mark.parametrize(
    "broken",
    [
        {"owner_id": None},
        {"version": 0},
        {"prompts": {"system": "only a system prompt"}},
        {"output": {"format": "yaml"}},
        {"validation": {"mode": "lenient"}},
        {"model": {"provider": "openrouter"}},
        {"tasks": "not a list"},
    ],
)
def test_a_malformed_template_document_is_422_not_a_default(broken: dict[str, Any]) -> None:
    with pytest.raises(Unprocessable, match="cannot be used for generation") as info:
        jobs.template_from_answer("tpl1", Answer(200, template_doc(**broken)))
    assert info.value.status_code == 422


@pytest.mark.parametrize("missing", ["id", "version", "name", "owner_id", "prompts"])
def test_identity_and_prompts_are_required(missing: str) -> None:
    doc = template_doc()
    del doc[missing]
    with pytest.raises(Unprocessable):
        jobs.template_from_answer("tpl1", Answer(200, doc))


def test_a_body_that_is_not_a_document_is_422() -> None:
    with pytest.raises(Unprocessable):
        jobs.template_from_answer("tpl1", Answer(200, ["not", "an", "object"]))


# ------------------------------------------------------------------------------------------------ count
@pytest.mark.parametrize(
    ("tasks", "expected"),
    [
        ([], 0),
        ([{}], 1),
        ([{"count": 2}, {"product": "x"}], 3),
        ([{"count": 0}, {"count": 5}], 5),
        ([{"count": -1}, {"count": "7"}, {"count": True}, {"count": 2.5}], 4),
    ],
)
def test_count_from_tasks(tasks: list[dict[str, Any]], expected: int) -> None:
    assert jobs.count_from_tasks(tasks) == expected


def test_request_tasks_override_the_template_tasks_and_define_the_count() -> None:
    tpl = snapshot(tasks=[{"product": "a"}] * 5)
    tasks, count = jobs.plan_items(create(tasks=[{"product": "b", "count": 2}]), tpl, max_count=100)
    assert (tasks, count) == ([{"product": "b", "count": 2}], 2)
    tasks, count = jobs.plan_items(create(), tpl, max_count=100)
    assert (len(tasks), count) == (5, 5)


def test_an_explicit_count_wins_over_the_tasks() -> None:
    tasks, count = jobs.plan_items(create(count=7), snapshot(tasks=[{"count": 2}]), max_count=100)
    assert (tasks, count) == ([{"count": 2}], 7)


def test_no_count_and_no_tasks_is_refused() -> None:
    with pytest.raises(Unprocessable, match="count is required") as info:
        jobs.plan_items(create(), snapshot(), max_count=100)
    assert info.value.details == [
        {
            "loc": ["body", "count"],
            "msg": "count is required: the template defines no tasks",
            "type": "missing",
        }
    ]


def test_count_bounds() -> None:
    assert jobs.plan_items(create(count=100), snapshot(), max_count=100)[1] == 100
    with pytest.raises(Unprocessable, match="exceeds the maximum of 100") as info:
        jobs.plan_items(create(count=101), snapshot(), max_count=100)
    assert info.value.details == [
        {
            "loc": ["body", "count"],
            "msg": "count 101 exceeds the maximum of 100 items per job",
            "type": "less_than_equal",
        }
    ]
    with pytest.raises(Unprocessable, match="exceeds"):  # a count from tasks is bounded too
        jobs.plan_items(create(tasks=[{"count": 60}, {"count": 41}]), snapshot(), max_count=100)


# ------------------------------------------------------------------------------------------------ model
def test_the_request_model_overrides_the_template_model() -> None:
    body = create(model={"id": "meta/llama", "temperature": 0.2})
    assert jobs.choose_model(body, snapshot()) == ModelRef(id="meta/llama", temperature=0.2)
    assert jobs.choose_model(create(), snapshot()) == ModelRef(provider="openrouter", id="openai/gpt-4o-mini")


def test_no_model_anywhere_is_refused() -> None:
    with pytest.raises(Unprocessable, match="no model") as info:
        jobs.choose_model(create(), snapshot(model=None))
    assert [(d["loc"], d["type"]) for d in info.value.details] == [(["body", "model"], "missing")]


def test_the_catalog_fills_the_provider_and_gives_the_pricing() -> None:
    pricing = {"prompt": 0.15, "completion": 0.6}
    answer = Answer(200, {"id": "m", "provider": "ollama", "pricing": pricing})
    model, got = jobs.model_from_catalog(ModelRef(id="m"), answer)
    assert (model.provider, got) == ("ollama", pricing)
    model, _ = jobs.model_from_catalog(ModelRef(provider="openrouter", id="m"), answer)
    assert model.provider == "openrouter"  # the request's provider is kept


def test_an_unknown_model_is_refused_and_a_degraded_catalog_is_not() -> None:
    with pytest.raises(Unprocessable) as info:
        jobs.model_from_catalog(ModelRef(id="nope"), Answer(404, {}))
    assert info.value.code == "unknown_model"
    assert jobs.model_from_catalog(ModelRef(id="m"), Answer(500, {})) == (ModelRef(id="m"), None)
    assert jobs.model_from_catalog(ModelRef(id="m"), Answer(200, {"provider": "x", "pricing": 3})) == (
        ModelRef(id="m"),
        None,
    )


# ------------------------------------------------------------------------------------------------ validation
def test_validation_mode_request_over_template() -> None:
    assert jobs.validation_mode(create(validation_mode="none"), snapshot()) == "none"
    assert jobs.validation_mode(create(), snapshot(validation={"mode": "custom", "rules": []})) == "custom"


def test_strict_json_without_schema_is_refused_but_text_is_not() -> None:
    with pytest.raises(Unprocessable, match="needs a schema"):
        jobs.validation_mode(create(), snapshot(schema=None))
    assert jobs.validation_mode(create(validation_mode="none"), snapshot(schema=None)) == "none"
    assert jobs.validation_mode(create(), snapshot(schema=None, output={"format": "text"})) == "strict"


# ------------------------------------------------------------------------------------------------ status
def test_job_or_error() -> None:
    assert jobs.job_or_error("j", Answer(200, {"status": "running"})) == {"status": "running"}
    with pytest.raises(NotFound) as info:
        jobs.job_or_error("j", Answer(404, {}))
    assert info.value.details == {"job_id": "j"}
    with pytest.raises(AppError) as err:
        jobs.job_or_error("j", Answer(503, {"error": {"code": "x", "message": "generator down"}}))
    assert (err.value.status_code, err.value.code, err.value.message) == (
        503,
        "upstream_error",
        "generator down",
    )
    with pytest.raises(AppError, match="job status unavailable"):
        jobs.job_or_error("j", Answer(502, "<html>"))


@pytest.mark.parametrize("status", ["completed", "completed_with_errors", "failed", "cancelled"])
def test_an_ended_job_cannot_be_cancelled(status: str) -> None:
    with pytest.raises(Conflict) as info:
        jobs.ensure_cancellable({"status": status})
    assert info.value.code == "job_finished"


@pytest.mark.parametrize("status", ["queued", "running"])
def test_a_live_job_can_be_cancelled(status: str) -> None:
    jobs.ensure_cancellable({"status": status})


def test_history_query_sends_only_what_was_set() -> None:
    query = HistoryQuery.model_validate({"from": "2026-01-01T00:00:00Z", "status": "failed", "limit": 5})
    assert query.upstream_params() == {
        "limit": 5,
        "offset": 0,
        "status": "failed",
        "from": "2026-01-01T00:00:00+00:00",
    }


def test_model_as_an_id_string_or_an_object_is_the_same_request() -> None:
    base = {"provider": "openrouter", "id": "openai/gpt-4o-mini", "temperature": 0.3, "max_tokens": 500}
    tpl = snapshot(model=base)
    as_string = create(model="meta/llama")
    as_object = create(model={"id": "meta/llama"})
    assert as_string == as_object
    # what the request leaves out is the template's (as /templates/preview does with a model id)
    assert jobs.choose_model(as_string, tpl) == ModelRef(id="meta/llama", temperature=0.3, max_tokens=500)
    given = create(model={"id": "meta/llama", "temperature": 0.9})
    assert jobs.choose_model(given, tpl) == ModelRef(id="meta/llama", temperature=0.9, max_tokens=500)
    assert GenerationCreate.model_validate({"template_id": "t", "model": "x/y"}).model is not None


def test_a_job_still_in_the_outbox_reads_like_the_generators_status() -> None:
    command = jobs.new_command(
        create(count=3),
        template=snapshot(),
        model=ModelRef(id="m/x"),
        tasks=[],
        count=3,
        mode="none",
        job_id="j1",
        user_id="alice",
        now=datetime(2026, 12, 6, 23, 0, tzinfo=UTC),
    )
    queued = jobs.queued_view(command)
    assert queued["progress"] == {"percent": 0.0, "eta_seconds": None}
    assert queued["timings"]["created_at"] == "2026-12-06T23:00:00Z"
    assert jobs.undeliverable_view(command, "too large")["progress"] == {"percent": 0.0, "eta_seconds": 0.0}
