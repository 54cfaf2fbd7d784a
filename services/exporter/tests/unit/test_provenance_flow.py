"""Provenance from the generation events to the file: the projection keeps each item's model, task and attempts,
the worker reads them only when the export shows them, and ``auto`` resolves from the job's distinct models."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from llmts_common.contracts import (
    ExportRequested,
    GenerationCompleted,
    GenerationStarted,
    ItemGenerated,
    ModelRef,
    ModelUsed,
    Usage,
)
from llmts_exporter import handlers
from llmts_exporter.domain.jobs import item_provenance, model_key

from .fakes import FakeJobs
from .test_worker import _run, _world

INPUTS = {"target": 1, "task": 0, "task_index": 1, "row": {}}


def test_item_provenance_from_the_event() -> None:
    event = ItemGenerated(
        job_id="j", user_id="u", index=1, data={"a": 1}, attempts=2, content_hash="h",
        usage=Usage(prompt_tokens=10, completion_tokens=5, cost_usd=0.001),
        model=ModelUsed(provider="ollama", id="smollm2:135m"), inputs=INPUTS,
    )  # fmt: skip
    made = item_provenance(event)
    assert made == {
        "model": "smollm2:135m",
        "provider": "ollama",
        "target": 1,
        "task": 0,
        "task_index": 1,
        "attempts": 2,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": 0.001,
    }  # an empty task row is left out
    assert model_key(made) == "ollama/smollm2:135m"
    old = ItemGenerated(job_id="j", user_id="u", index=0, data=1, attempts=1, usage=Usage(), content_hash="h")
    assert "model" not in item_provenance(old)
    assert model_key(item_provenance(old)) is None
    seeded = event.model_copy(
        update={"provenance": {"task_index": 1, "dataset_id": "ds-1", "seed_row": 4, "sampled": {"tone": "terse"},
                               "judge": {"quality": 5}}}
    )  # fmt: skip
    extra = {k: v for k, v in item_provenance(seeded).items() if k not in made}
    assert extra == {
        "dataset_id": "ds-1",
        "seed_row": 4,
        "sampled": {"tone": "terse"},
        "judge": {"quality": 5},
    }
    unseeded = event.model_copy(update={"provenance": {"task_index": 1, "seed_row": None, "sampled": {}}})
    assert item_provenance(unseeded) == made  # no seed, nothing sampled: nothing added
    assert model_key({"model": "openai/gpt-4o-mini"}) == "openai/gpt-4o-mini"


async def _two_model_job(jobs: FakeJobs, models: list[ModelUsed | None]) -> None:
    await handlers.on_generation_started(
        GenerationStarted(
            job_id="j1", user_id="u1", requested=len(models), model=ModelRef(provider="ollama", id="a"),
            template_id="t", template_version=1, started_at=datetime(2026, 1, 1, tzinfo=UTC), template_name="T",
        ),
        jobs=jobs,
    )  # fmt: skip
    for i, model in enumerate(models):
        event = ItemGenerated(
            job_id="j1", user_id="u1", index=i, data={"q": f"q{i}"}, attempts=1 + i % 2, content_hash=str(i),
            usage=Usage(prompt_tokens=i), model=model, inputs={**INPUTS, "target": i, "task_index": i},
        )  # fmt: skip
        await handlers.on_item_generated(event, jobs=jobs)
    done = GenerationCompleted(
        job_id="j1", user_id="u1", status="completed", requested=len(models), succeeded=len(models), rejected=0,
        attempts=len(models), usage=Usage(), duration_seconds=1.0,
    )  # fmt: skip
    await handlers.on_job_ended(done, jobs=jobs, wake=asyncio.Event())


A = ModelUsed(provider="ollama", id="a")
B = ModelUsed(provider=None, id="b")


async def _export(options: dict[str, Any], models: list[ModelUsed | None], fmt: str = "csv") -> bytes:
    jobs, exports, store, clock, worker = _world(page_size=2)
    await _two_model_job(jobs, models)
    command = ExportRequested(export_id="e1", job_id="j1", user_id="u1", format=fmt, options=options)
    await handlers.request_export(command, exports=exports, clock=clock, wake=worker.wake)
    await _run(worker)
    assert exports.records["e1"].status == "ready", exports.records["e1"].reason
    return bytes(store.files["e1-r1"])


async def test_models_in_order_of_first_use() -> None:
    jobs = FakeJobs()
    await _two_model_job(jobs, [A, A, None, B, A])
    job = await jobs.get("j1")
    assert job is not None
    assert job.models == ["ollama/a", "b"]


async def test_auto_shows_the_models_of_a_job_that_switched() -> None:
    raw = await _export({}, [A, A, B, B, B])
    rows = list(csv.DictReader(io.StringIO(raw.decode())))
    assert [r["_model"] for r in rows] == ["a", "a", "b", "b", "b"]
    assert [r["_provider"] for r in rows] == ["ollama", "ollama", "", "", ""]
    assert [r["_index"] for r in rows] == ["0", "1", "2", "3", "4"]
    assert [r["_attempts"] for r in rows] == ["1", "2", "1", "2", "1"]
    assert [r["_task_index"] for r in rows] == ["0", "1", "2", "3", "4"]


@pytest.mark.parametrize(("options", "shown"), [({}, False), ({"provenance": True}, True)])
async def test_a_one_model_job_shows_provenance_only_when_asked(options: dict[str, Any], shown: bool) -> None:
    raw = await _export(options, [A, A, A])
    header = raw.decode().splitlines()[0].split(",")
    assert ("_model" in header) is shown
    assert header[0] == "q"


async def test_false_hides_it_and_the_envelope_lists_the_models() -> None:
    doc = json.loads(await _export({"provenance": False, "envelope": True}, [A, B], "json"))
    assert doc["meta"]["models"] == ["ollama/a", "b"]
    assert doc["items"] == [{"q": "q0"}, {"q": "q1"}]


async def test_invalid_provenance_option_fails_the_export_at_once() -> None:
    _jobs, exports, _, clock, worker = _world()
    command = ExportRequested(
        export_id="e2", job_id="j1", user_id="u1", format="csv", options={"provenance": 1}
    )
    await handlers.request_export(command, exports=exports, clock=clock, wake=worker.wake)
    record = exports.records["e2"]
    assert record.status == "failed"
    assert "provenance" in (record.reason or "")


def test_the_seen_models_memory_is_bounded() -> None:
    """The Mongo projection writes a job's model once per process, and forgets the oldest jobs past its bound
    (forgetting only costs one more idempotent ``$addToSet``)."""
    from llmts_exporter.adapters.mongo import _SeenModels

    seen = _SeenModels(max_jobs=2)
    seen.add("j1", "a")
    seen.add("j2", "a")
    seen.add("j1", "b")  # j1 is now the most recent
    seen.add("j3", "a")
    assert seen.seen("j1", "a")
    assert seen.seen("j1", "b")
    assert not seen.seen("j2", "a")  # the oldest job was forgotten
    assert seen.seen("j3", "a")
    assert not seen.seen("j3", "b")
