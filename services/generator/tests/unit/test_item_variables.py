"""Per-item variables of a job (issue 18 #1–#2): each target's seed row and sampled values in its render context,
the same on every run with the same job seed, the job's errors, and the item's provenance."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from services.generator.tests.fakes import FakeEvents, FakeGenerationRepository
from services.generator.tests.support import command, template

from llmts_common.contracts import GenerationRequested
from llmts_common.errors import NotFound, ServiceUnavailable
from llmts_generator.diversity_run import report_of, round_diversity, wanted
from llmts_generator.domain.itemvars import DatasetGone, DatasetsUnavailable, ItemDraw, ItemVariables
from llmts_generator.domain.requests import RenderedItem, item_context
from llmts_generator.domain.scheduling import SlotPlan
from llmts_generator.domain.tasks import expand_tasks
from llmts_generator.entrypoints.views import item_view
from llmts_generator.itemdraws import (
    JobInputError,
    draw_item,
    item_provenance,
    open_item_variables,
    preview_draws,
)
from llmts_generator.jobloop import JobAborted
from llmts_generator.records import (
    ItemOutcome,
    JobRef,
    SlotUsage,
    accepted_op,
    rejected_op,
    stored_item_event,
)

NOW = datetime(2026, 1, 2, tzinfo=UTC)
VARIABLES: dict[str, Any] = {
    "lang": "en",
    "tone": {"sampler": "category", "values": ["formal", "friendly"], "weights": [3, 1]},
    "stars": {"sampler": "uniform", "type": "int", "low": 1, "high": 5},
    "line": {"sampler": "expression", "template": "{{ tone }} about {{ product }}"},
}


class Rows:
    """Seed rows in memory (the templates service's internal route in production)."""

    def __init__(self, rows: list[dict[str, Any]], *, down: int = 0, gone: bool = False) -> None:
        self.rows = rows
        self.down = down  # the first `down` reads fail as if the templates service were away
        self.gone = gone
        self.reads = 0

    def _check(self) -> None:
        self.reads += 1
        if self.gone:
            raise DatasetGone("seed dataset ds-1 not found")
        if self.reads <= self.down:
            raise DatasetsUnavailable("templates service: ConnectError")

    async def total(self, user_id: str, dataset_id: str) -> int:
        self._check()
        return len(self.rows)

    async def row(self, user_id: str, dataset_id: str, index: int) -> dict[str, Any]:
        self._check()
        return dict(self.rows[index])


PRODUCTS = [{"product": f"p{i}", "price": str(i), "secret": "x"} for i in range(10)]


def job(sampling: str = "shuffle", **over: Any) -> GenerationRequested:
    tpl = template(
        variables=VARIABLES,
        seed={"dataset_id": "ds-1", "sampling": sampling, "columns": ["product", "price"]},
    )
    return command("u1", count=20, template=tpl, **over)


async def test_the_context_has_the_seed_row_and_the_sampled_values_not_the_specs() -> None:
    req = job(variables={"lang": "ru"})
    variables = ItemVariables(req, 7, Rows(PRODUCTS))
    await variables.open()
    draw = await variables.draw(3)
    _, context = item_context(req, expand_tasks([]), 3, job_id="j", now=NOW, draw=draw)
    assert draw.row is not None
    assert context["product"] == draw.row["product"]
    assert "secret" not in context  # only the seed's columns
    assert context["tone"] in ("formal", "friendly")
    assert 1 <= context["stars"] <= 5
    assert context["line"] == f"{context['tone']} about {context['product']}"
    assert context["lang"] == "ru"  # the request's variables win
    assert draw.row_number is not None
    assert PRODUCTS[draw.row_number]["product"] == context["product"]
    _, plain = item_context(req, expand_tasks([]), 3, job_id="j", now=NOW)
    assert "tone" not in plain  # without a draw: never the sampler spec itself


async def test_the_same_job_seed_gives_every_target_the_same_values_again() -> None:
    first = ItemVariables(job(), 42, Rows(PRODUCTS))
    again = ItemVariables(job(), 42, Rows(PRODUCTS))  # a resumed / re-run job
    other = ItemVariables(job(), 43, Rows(PRODUCTS))
    for v in (first, again, other):
        await v.open()
    a = [await first.draw(t) for t in range(100)]
    assert [await again.draw(t) for t in range(100)] == a
    assert [await other.draw(t) for t in range(100)] != a
    # shuffle: each pass over the 10 rows sees every row once
    assert sorted(d.row_number for d in a[:10] if d.row_number is not None) == list(range(10))
    # stratified categories: 3:1 over a block of 100 items
    assert sum(d.sampled["tone"] == "formal" for d in a) == 75


async def test_a_missing_dataset_fails_the_job_and_an_absent_service_is_waited_for() -> None:
    with pytest.raises(JobInputError) as err:
        await open_item_variables(job(), 1, Rows(PRODUCTS, gone=True))
    assert err.value.code == "dataset_not_found"
    with pytest.raises(JobInputError) as err:
        await open_item_variables(job(), 1, Rows([]))
    assert err.value.code == "dataset_not_found"
    with pytest.raises(JobInputError):
        await open_item_variables(job(), 1, None)  # no templates service configured
    rows = Rows(PRODUCTS, down=2)
    variables = await open_item_variables(job(), 1, rows, patience_s=5)
    assert rows.reads == 3
    assert variables.active
    with pytest.raises(JobAborted):  # away for longer: no terminal state, the job is taken up again later
        await open_item_variables(job(), 1, Rows(PRODUCTS, down=100), patience_s=0.3)
    bad = template(variables={"x": {"sampler": "category", "values": []}})
    with pytest.raises(JobInputError) as err:
        await open_item_variables(command("u1", template=bad), 1, None)
    assert err.value.code == "invalid_template"


class Sched:
    def __init__(self) -> None:
        self.fatal: tuple[str, str] | None = None

    @property
    def stopped(self) -> bool:
        return self.fatal is not None

    def fail(self, code: str, reason: str) -> None:
        self.fatal = (code, reason)


async def test_a_slot_retries_an_absent_service_and_fails_the_job_on_a_deleted_dataset() -> None:
    rows = Rows(PRODUCTS)
    variables = await open_item_variables(job(), 1, rows)
    rows.down = rows.reads + 2
    sched = Sched()
    draw = await draw_item(variables, 4, sched)  # type: ignore[arg-type]
    assert draw is not None
    assert draw.row is not None
    rows.gone = True
    variables_gone = ItemVariables(job(), 1, rows)
    variables_gone._total = len(PRODUCTS)  # opened before the dataset was deleted
    assert await draw_item(variables_gone, 5, sched) is None  # type: ignore[arg-type]
    assert sched.fatal is not None
    assert sched.fatal[0] == "dataset_not_found"
    assert await draw_item(None, 1, Sched()) == ItemDraw()  # type: ignore[arg-type]


def test_provenance_names_the_row_the_sampled_values_the_model_and_the_judge() -> None:
    draw = ItemDraw(row_number=7, row={"product": "p7"}, sampled={"tone": "formal"})
    rendered = RenderedItem(3, 1, "s", "u", [], {}, draw)
    attempt = {"model": "m-1", "provider": "openrouter"}
    prov = item_provenance(rendered, attempt, 2, dataset_id="ds-1", judge={"scores": {"quality": 4}})
    assert prov == {
        "task_index": 1,
        "dataset_id": "ds-1",
        "seed_row": 7,
        "sampled": {"tone": "formal"},
        "model": "m-1",
        "provider": "openrouter",
        "attempts": 2,
        "judge": {"quality": 4},
    }
    bare = item_provenance(RenderedItem(0, 0, "s", "u", []), attempt, 1, dataset_id=None)
    assert (bare["seed_row"], bare["dataset_id"], bare["sampled"], bare["judge"]) == (None, None, {}, None)


def test_the_diversity_report_compares_sampled_categories_with_their_weights() -> None:
    docs: list[dict[str, Any]] = [
        {
            "status": "accepted",
            "index": i,
            "data_json": json.dumps({"title": f"item {i} " + " ".join(f"w{i}x{k}" for k in range(8))}),
            "provenance": {"sampled": {"tone": "formal" if i % 4 else "friendly"}},
        }
        for i in range(40)
    ]
    req = job()
    report = report_of(
        docs, req, {"tone": {"formal": 0.75, "friendly": 0.25}}, total=45, rejected_near_duplicates=1
    )
    assert report["items"] == 40
    assert report["items_total"] == 45
    assert report["near_duplicates_rejected"] == 1
    assert report["near_duplicate_rate"] == 0.0
    tone = report["categories"]["tone"]
    assert tone["values"]["formal"] == {"count": 30, "share": 0.75, "target": 0.75}
    assert tone["max_dev_pp"] == 0.0
    assert report_of(docs[:10], req, {})["items"] == 10


async def test_the_preview_draws_as_the_job_and_names_a_missing_dataset() -> None:
    req = job()
    variables = ItemVariables(req, 5, Rows(PRODUCTS))
    await variables.open()
    assert await preview_draws(req, 5, Rows(PRODUCTS), [0, 1]) == [await variables.draw(t) for t in (0, 1)]
    with pytest.raises(NotFound) as gone:
        await preview_draws(req, 5, Rows(PRODUCTS, gone=True), [0])
    assert gone.value.code == "dataset_not_found"
    with pytest.raises(ServiceUnavailable):
        await preview_draws(req, 5, Rows(PRODUCTS, down=5), [0])


def test_an_accepted_item_stores_its_provenance_and_a_republish_carries_it() -> None:
    events = FakeEvents()
    job_ref = JobRef("job-1", "u1", 1)
    draw = ItemDraw(row_number=2, row={"product": "p2"}, sampled={"tone": "terse"})
    rendered = RenderedItem(5, 0, "s", "u", [], {}, draw)
    attempt = {"model": "m-1", "provider": "openrouter", "slot": 0, "prompt_tokens": 1,
               "completion_tokens": 1, "cost_usd": 0.0}  # fmt: skip
    prov = item_provenance(rendered, attempt, 1, dataset_id="ds-1")
    done = ItemOutcome(SlotPlan(0, 5), 1, SlotUsage(), NOW)
    op = accepted_op(
        job_ref,
        events,
        attempt,
        done,
        index=0,
        value={"title": "x"},
        digest="h",
        task_index=0,
        provenance=prov,
    )
    (item,) = op.items
    assert item["provenance"] == prov
    envelope, _ = op.item_events[0]
    assert envelope.data["provenance"] == prov
    again, _ = stored_item_event(job_ref, events, item)
    assert again.data["provenance"] == prov
    assert again.id == envelope.id


def test_a_rejected_item_stores_what_it_was_made_from_and_a_republish_carries_it() -> None:
    """Rejections traced to their seed rows and sampled values: the rejected item's document, its event, its view in
    the result and a republished event carry the same provenance as an accepted item's would."""
    events = FakeEvents()
    job_ref = JobRef("job-1", "u1", 1)
    draw = ItemDraw(row_number=4, row={"product": "p4"}, sampled={"tone": "formal"})
    rendered = RenderedItem(6, 0, "s", "u", [], {}, draw)
    attempt = {"model": "m-1", "provider": "openrouter", "slot": 1, "prompt_tokens": 1,
               "completion_tokens": 1, "cost_usd": 0.0}  # fmt: skip
    judged = {"scores": {"quality": 1}, "accepted": False}
    prov = item_provenance(rendered, attempt, 3, dataset_id="ds-1", judge=judged)
    done = ItemOutcome(SlotPlan(1, 6), 3, SlotUsage(), NOW)
    op = rejected_op(
        job_ref,
        events,
        attempt,
        done,
        number=0,
        reason="judge",
        errors=[],
        last_text="{}",
        judge=judged,
        provenance=prov,
    )
    (item,) = op.items
    assert item["provenance"] == prov
    assert prov["seed_row"] == 4
    assert prov["judge"] == {"quality": 1}
    envelope, _ = op.item_events[0]
    assert envelope.data["provenance"] == prov
    assert item_view(item)["provenance"] == prov
    again, _ = stored_item_event(job_ref, events, item)
    assert again.data["provenance"] == prov
    assert again.id == envelope.id


async def test_only_jobs_using_seeds_samplers_or_near_duplicate_control_get_a_report() -> None:
    plain = command("u1", count=3)
    assert not wanted(plain, ItemVariables(plain, 1, None))
    assert not wanted(plain, None)
    sampled = command("u1", template=template(variables={"tone": VARIABLES["tone"]}))
    assert wanted(sampled, ItemVariables(sampled, 1, None))
    near = command(
        "u1", template=template(validation={"mode": "strict", "near_duplicates": {"threshold": 0.7}})
    )
    assert wanted(near, ItemVariables(near, 1, None))
    repo = FakeGenerationRepository()
    assert await round_diversity(repo, None, plain, None, "completed") is None  # type: ignore[arg-type]


def test_near_duplicates_are_looked_for_in_a_sample_of_the_items() -> None:
    docs = [
        {
            "status": "accepted",
            "index": i,
            "data_json": json.dumps({"title": "the very same words again here"}),
        }
        for i in range(10)
    ]
    report = report_of(docs, job(), {})
    assert report["near_duplicate_rate"] == 1.0
    assert report["near_duplicate_sample"] == 10


async def test_expressions_see_the_seed_row_the_task_and_the_request_variables() -> None:
    tpl = template(
        variables={
            "lang": "en",
            "line": {"sampler": "expression", "template": "{{ topic }}/{{ product }}/{{ lang }}"},
        },
        seed={"dataset_id": "ds-1", "sampling": "ordered"},
        tasks=[{"topic": "cats"}, {"topic": "dogs"}],
    )
    req = command("u1", count=2, template=tpl, variables={"lang": "ru"})
    variables = await open_item_variables(req, 3, Rows(PRODUCTS))
    assert [(await variables.draw(t)).sampled["line"] for t in (0, 1)] == ["cats/p0/ru", "dogs/p1/ru"]
