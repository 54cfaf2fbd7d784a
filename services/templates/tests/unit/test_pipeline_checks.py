"""Issue 18 document fields: samplers, seed, judge and stages are checked with their paths; old documents stay
valid; sampler names and seed columns count as declared variables."""

from __future__ import annotations

from typing import Any

import pytest

from llmts_api.template_examples import PIPELINE_DOCUMENT
from llmts_common.errors import Unprocessable
from llmts_templates.checks import validate_document, validate_payload
from llmts_templates.domain.document import TemplateDocument
from llmts_templates.handlers import Deps, create_template
from llmts_templates.pipeline_checks import seed_columns

DATASET = "0123456789abcdef0123456789abcdef"
QA_SCHEMA = {"type": "object", "properties": {"question": {"type": "string"}}, "required": ["question"]}
ANSWER_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def doc(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "QA",
        "prompts": {"user": "Ask about {{ topic }} in a {{ tone }} tone."},
        "schema": QA_SCHEMA,
        "variables": {"topic": "tides", "tone": {"sampler": "category", "values": ["formal", "friendly"]}},
    }
    base.update(over)
    return base


def stage(name: str, user: str, **over: Any) -> dict[str, Any]:
    return {"name": name, "prompts": {"user": user}, "schema": ANSWER_SCHEMA, **over}


def paths(report: Any) -> list[str]:
    return [e.path for e in report.errors]


def test_an_old_document_without_the_new_fields_stays_valid() -> None:
    report = validate_payload(doc(variables={"topic": "tides", "tone": "formal"}))
    assert report.valid, report.errors


def test_a_sampler_name_is_a_declared_variable() -> None:
    report = validate_payload(doc())
    assert report.valid, report.errors
    assert not [w for w in report.warnings if "tone" in w.message]


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"sampler": "category", "values": ["a", "b"], "weights": [1]}, "variables.tone"),
        ({"sampler": "uniform", "low": 5, "high": 1}, "variables.tone"),
        ({"sampler": "subcategory", "category": "nope", "values": {}}, "variables.tone.category"),
        ({"sampler": "nonsense"}, "variables.tone"),
    ],
)
def test_a_bad_sampler_is_an_error_at_its_path(spec: dict[str, Any], path: str) -> None:
    report = validate_payload(doc(variables={"topic": "t", "tone": spec}))
    assert not report.valid
    assert path in paths(report)
    assert report.errors[0].kind == "sampler"


def test_a_judge_is_checked_with_paths() -> None:
    judge = {
        "model": {"id": "m"},
        "rubric": "Is it clear?",
        "scores": {"clarity": [1, 5]},
        "accept": "clarity >= 4",
    }
    assert validate_payload(doc(judge=judge)).valid
    bad_accept = validate_payload(doc(judge={**judge, "accept": "clarity >= 4 and depth > 2"}))
    assert paths(bad_accept) == ["judge.accept"]
    assert "depth" in bad_accept.errors[0].message
    bad_range = validate_payload(doc(judge={**judge, "scores": {"clarity": [5, 1]}}))
    assert paths(bad_range) == ["judge.scores.clarity"]


def test_stages_may_use_main_and_earlier_stages() -> None:
    stages = [
        stage("answer", "Answer: {{ main.question }}"),
        stage("critique", "Critique {{ answer.answer }} to {{ main.question }} ({{ tone }})"),
    ]
    report = validate_payload(doc(stages=stages))
    assert report.valid, report.errors
    assert report.warnings == []


def test_a_stage_naming_itself_or_a_later_stage_is_an_error() -> None:
    stages = [
        stage("answer", "Answer {{ critique.answer }}"),
        stage("critique", "Critique {{ critique.answer }}"),
    ]
    report = validate_payload(doc(stages=stages))
    assert paths(report) == ["stages[0].prompts.user", "stages[1].prompts.user"]
    assert {e.kind for e in report.errors} == {"stage_reference"}


def test_the_top_level_prompts_may_not_name_a_stage() -> None:
    report = validate_payload(doc(prompts={"user": "{{ answer.answer }}"}, stages=[stage("answer", "x")]))
    assert paths(report) == ["prompts.user"]


@pytest.mark.parametrize(
    ("stages", "path"),
    [
        ([stage("main", "x")], "stages[0].name"),
        ([stage("a", "x"), stage("a", "y")], "stages[1].name"),
        ([stage("topic", "x")], "stages[0].name"),
        ([stage("question", "x")], "stages[0].name"),
        ([stage("a", "x", schema={"type": "nope"})], "stages[0].schema.type"),
        ([stage("a", "{% if %}")], "stages[0].prompts.user"),
        ([stage("a", "x", validation={"mode": "custom", "rules": [{"path": "a", "min_length": 5, "max_length": 1}]})],
         "stages[0].validation.rules[0]"),
    ],
)  # fmt: skip
def test_stage_problems_have_their_paths(stages: list[dict[str, Any]], path: str) -> None:
    report = validate_payload(doc(stages=stages))
    assert path in paths(report), report.errors


def test_stages_need_json_output() -> None:
    report = validate_payload(doc(output={"format": "text"}, schema=None, stages=[stage("a", "x")]))
    assert "stages" in paths(report)


def test_a_bad_stage_name_is_a_shape_error() -> None:
    report = validate_payload(doc(stages=[stage("has space", "x")]))
    assert paths(report) == ["stages[0].name"]


def test_seed_columns_are_declared_names() -> None:
    d = TemplateDocument.model_validate(doc(prompts={"user": "Describe {{ title }} at {{ price }}"}))
    assert [w.path for w in validate_document(d).warnings] == ["prompts.user", "prompts.user"]
    assert validate_document(d, seed_names={"title", "price"}).warnings == []


class Datasets:
    def __init__(self, owner: str) -> None:
        self.doc = {"_id": DATASET, "owner_id": owner, "columns": [{"name": "title"}, {"name": "price"}]}

    async def get(self, dataset_id: str) -> dict[str, Any] | None:
        return self.doc if dataset_id == DATASET else None

    async def rows(self, dataset_id: str, offset: int, limit: int) -> list[dict[str, Any]]:
        return []


async def test_the_seed_must_be_the_owners_dataset_with_those_columns() -> None:
    d = TemplateDocument.model_validate(doc(seed={"dataset_id": DATASET, "columns": ["title", "colour"]}))
    names, issues = await seed_columns(d, owner_id="u1", datasets=Datasets("u1"))
    assert names == {"title"}
    assert [i.path for i in issues] == ["seed.columns[1]"]
    _, others = await seed_columns(d, owner_id="u2", datasets=Datasets("u1"))
    assert [i.path for i in others] == ["seed.dataset_id"]


async def test_a_public_template_cannot_have_a_seed() -> None:
    d = TemplateDocument.model_validate(doc(visibility="public", seed={"dataset_id": DATASET}))
    names, issues = await seed_columns(d, owner_id="u1", datasets=Datasets("u1"))
    assert names == {"title", "price"}
    assert [i.path for i in issues] == ["seed"]


async def test_saving_checks_the_seed_and_stages(deps: Deps) -> None:
    deps.datasets = Datasets("owner")
    good = TemplateDocument.model_validate(
        doc(
            prompts={"user": "Describe {{ title }} ({{ tone }})"},
            seed={"dataset_id": DATASET},
            stages=[stage("answer", "Answer {{ main.question }} for {{ title }}")],
        )
    )
    record = await create_template(good, user_id="owner", deps=deps)
    assert record.document.stored()["stages"][0]["schema"] == ANSWER_SCHEMA
    with pytest.raises(Unprocessable) as exc:
        await create_template(good, user_id="someone-else", deps=deps)
    assert [d["path"] for d in exc.value.details] == ["seed.dataset_id"]
    assert exc.value.details[0]["loc"] == ["body", "seed", "dataset_id"]


def test_the_openapi_example_of_a_dataset_grade_template_is_valid() -> None:
    report = validate_payload(PIPELINE_DOCUMENT)
    assert report.valid, report.errors
    assert [w.path for w in report.warnings] == ["prompts.user", "prompts.user", "stages[0].prompts.user"]
