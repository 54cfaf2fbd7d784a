"""A job's template snapshot carries the template's seed, judge and stages (issue 18), so the generator runs the
version the job was started with."""

from __future__ import annotations

from services.gateway.tests.fakes import template_doc

from llmts_api.template_examples import DATASET_ID, JUDGE, PIPELINE_DOCUMENT
from llmts_gateway.domain import jobs
from llmts_gateway.domain.ports import Answer


def test_seed_judge_and_stages_reach_the_snapshot() -> None:
    extra = {k: PIPELINE_DOCUMENT[k] for k in ("seed", "judge", "stages", "variables")}
    snap = jobs.template_from_answer("tpl1", Answer(200, template_doc(**extra)))
    assert snap.seed is not None
    assert (snap.seed.dataset_id, snap.seed.sampling, snap.seed.columns) == (
        DATASET_ID,
        "shuffle",
        ["title", "price"],
    )
    assert snap.judge is not None
    assert snap.judge.accept == JUDGE["accept"]
    assert snap.judge.scores == {"accuracy": [1.0, 5.0], "helpfulness": [1.0, 5.0]}
    assert [s.name for s in snap.stages] == ["faq"]
    assert snap.stages[0].json_schema["required"] == ["faq"]
    assert snap.variables["tone"]["sampler"] == "category"
    dumped = snap.model_dump(mode="json")
    assert dumped["stages"][0]["schema"]["required"] == ["faq"]


def test_an_old_template_has_none_of_them() -> None:
    snap = jobs.template_from_answer("tpl1", Answer(200, template_doc()))
    assert (snap.seed, snap.judge, snap.stages) == (None, None, [])
