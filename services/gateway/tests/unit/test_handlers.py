"""The gateway's generation use cases (``llmts_gateway.handlers``) on in-memory fakes of its ports."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from services.gateway.tests.fakes import NOW, Fakes

from llmts_api.generation import BatchCreate, GenerationAccepted, GenerationCreate, JobPublic, ResultQuery
from llmts_common.contracts import GenerationCancelRequested, GenerationRequested, ModelRef
from llmts_common.errors import AppError, Conflict, NotFound, Unprocessable
from llmts_gateway import handlers
from llmts_gateway.adapters.services import answer_of
from llmts_gateway.domain.ports import Answer


@pytest.fixture
def f() -> Fakes:
    fakes = Fakes(max_count=100)
    fakes.templates.add("tpl1")
    fakes.catalog.add("openai/gpt-4o-mini", pricing={"prompt": 0.15, "completion": 0.6})
    return fakes


def create(**fields: Any) -> GenerationCreate:
    return GenerationCreate.model_validate({"template_id": "tpl1", **fields})


async def submit(f: Fakes, user: str = "alice", **fields: Any) -> str:
    outcome = await handlers.create_or_preview(create(**fields), user_id=user, token=user, deps=f.deps)
    assert isinstance(outcome, GenerationAccepted)
    return outcome.job_id


# ------------------------------------------------------------------------------------------------ accepting
async def test_build_command_from_request_and_template(f: Fakes) -> None:
    body = create(count=4, variables={"tone": "dry"}, concurrency=3, max_cost_usd=0.5, dedup=False)
    command, pricing = await handlers.build_command(body, user_id="alice", token="alice", deps=f.deps)
    assert (command.job_id, command.user_id, command.count) == ("job1", "alice", 4)
    assert command.template.id == "tpl1"
    assert command.template.version == 3
    assert command.model == ModelRef(provider="openrouter", id="openai/gpt-4o-mini")
    assert command.variables == {"tone": "dry"}
    assert (command.concurrency, command.max_cost_usd, command.dedup) == (3, 0.5, False)
    assert command.validation_mode == "strict"
    assert command.requested_at == NOW
    assert pricing == {"prompt": 0.15, "completion": 0.6}
    assert f.templates.calls == [("tpl1", "alice")]  # read with the caller's token


async def test_the_count_comes_from_the_tasks_and_the_request_overrides_the_template(f: Fakes) -> None:
    f.templates.add(
        "tpl1", tasks=[{"product": "a"}, {"product": "b", "count": 3}], validation={"mode": "custom"}
    )
    command, _ = await handlers.build_command(create(), user_id="alice", token="alice", deps=f.deps)
    assert (command.count, len(command.tasks), command.validation_mode) == (4, 2, "custom")
    body = create(
        tasks=[{"product": "c", "count": 2}], validation_mode="none", model={"id": "openai/gpt-4o-mini"}
    )
    command, _ = await handlers.build_command(body, user_id="alice", token="alice", deps=f.deps)
    assert (command.count, command.tasks, command.validation_mode) == (
        2,
        [{"product": "c", "count": 2}],
        "none",
    )
    assert command.model.provider == "openrouter"  # filled in by the catalog


async def test_an_unknown_model_is_refused_before_anything_is_accepted(f: Fakes) -> None:
    with pytest.raises(Unprocessable) as info:
        await submit(f, count=1, model={"id": "nobody/knows"})
    assert info.value.code == "unknown_model"
    assert f.commands.enqueued == []


async def test_an_unreachable_catalog_does_not_block_generation(f: Fakes) -> None:
    f.catalog.unreachable = True
    command, pricing = await handlers.build_command(
        create(count=1, model={"id": "nobody/knows"}), user_id="alice", token="alice", deps=f.deps
    )
    assert (command.model, pricing) == (ModelRef(id="nobody/knows"), None)


async def test_count_bound_is_the_configured_maximum(f: Fakes) -> None:
    assert await submit(f, count=100)
    with pytest.raises(Unprocessable, match="exceeds the maximum of 100"):
        await submit(f, count=101)
    assert len(f.commands.enqueued) == 1


async def test_a_missing_template_is_404_and_nothing_is_enqueued(f: Fakes) -> None:
    with pytest.raises(NotFound) as info:
        await submit(f, count=1, template_id="other")
    assert info.value.code == "template_not_found"
    assert f.commands.enqueued == []


async def test_submit_stores_the_command_under_the_job_id(f: Fakes) -> None:
    outcome = await handlers.create_or_preview(create(count=2), user_id="alice", token="alice", deps=f.deps)
    assert isinstance(outcome, GenerationAccepted)
    assert outcome.job_id == "job1"
    assert outcome.links.self == "/generate/job1"
    assert outcome.links.websocket == "/ws/generate/job1"
    [(command, message_id)] = f.commands.enqueued
    assert isinstance(command, GenerationRequested)
    assert (command.job_id, message_id) == ("job1", "job1")


async def test_dry_run_previews_and_accepts_nothing(f: Fakes) -> None:
    outcome = await handlers.create_or_preview(
        create(count=50, dry_run=True), user_id="alice", token="alice", deps=f.deps
    )
    assert isinstance(outcome, Answer)
    assert outcome.status == 200
    assert outcome.body["dry_run"] is True
    assert outcome.body["template"] == {"id": "tpl1", "version": 3}
    assert len(outcome.body["items"]) == 3
    [(_, payload)] = [c for c in f.generator.calls if c[0] == "preview"]
    assert payload["items"] == 3
    assert payload["request"]["count"] == 50
    assert payload["request"]["template"]["schema"]["type"] == "object"  # the schema under its wire name
    assert payload["pricing"] == {"prompt": 0.15, "completion": 0.6}
    small = await handlers.preview_job(create(count=2), user_id="alice", token="alice", deps=f.deps)
    assert len(small.body["items"]) == 2
    assert f.commands.enqueued == []


async def test_a_preview_refused_by_the_generator_is_relayed_unchanged(f: Fakes) -> None:
    refused = Answer(422, {"error": {"code": "render_error", "message": "x", "details": None}})

    async def preview(payload: dict[str, Any], *, token: str) -> Answer:
        return refused

    f.generator.preview = preview  # type: ignore[method-assign]
    assert await handlers.preview_job(create(count=2), user_id="alice", token="alice", deps=f.deps) == refused


async def test_batch_accepts_every_job(f: Fakes) -> None:
    body = BatchCreate.model_validate({"jobs": [{"template_id": "tpl1", "count": n} for n in (1, 2, 3)]})
    accepted = await handlers.submit_batch(body, user_id="alice", token="alice", deps=f.deps)
    assert [j.job_id for j in accepted.jobs] == ["job1", "job2", "job3"]
    assert [(c.count, m) for c, m in f.commands.enqueued] == [(1, "job1"), (2, "job2"), (3, "job3")]


async def test_batch_validates_every_job_before_accepting_any(f: Fakes) -> None:
    body = BatchCreate.model_validate(
        {"jobs": [{"template_id": "tpl1", "count": 1}, {"template_id": "nope", "count": 1}]}
    )
    with pytest.raises(NotFound) as info:
        await handlers.submit_batch(body, user_id="alice", token="alice", deps=f.deps)
    assert info.value.message.startswith("job 1: ")
    assert info.value.details == {"job": 1, "error": {"template_id": "nope"}}
    assert f.commands.enqueued == []


async def test_dry_run_is_refused_in_a_batch(f: Fakes) -> None:
    body = BatchCreate.model_validate({"jobs": [{"template_id": "tpl1", "count": 1, "dry_run": True}]})
    with pytest.raises(Unprocessable, match="dry_run") as info:
        await handlers.submit_batch(body, user_id="alice", token="alice", deps=f.deps)
    assert [d["loc"] for d in info.value.details] == [["body", "jobs", 0, "dry_run"]]


# ------------------------------------------------------------------------------------------------ reading
async def test_a_job_still_in_the_outbox_reads_as_queued_for_its_owner_only(f: Fakes) -> None:
    job_id = await submit(f, count=5)
    answer = await handlers.job_status(job_id, user_id="alice", token="alice", deps=f.deps)
    assert answer.status == 200
    view = answer.body
    assert (view["job_id"], view["status"], view["requested"]) == (job_id, "queued", 5)
    assert view["template"] == {"id": "tpl1", "version": 3, "name": "Reviews"}
    assert view["model"]["id"] == "openai/gpt-4o-mini"
    assert view["counts"] == {
        "requested": 5,
        "succeeded": 0,
        "rejected": 0,
        "attempts": 0,
        "item_attempts": 0,
        "in_flight": 0,
    }
    assert view["timings"]["created_at"] == "2026-12-06T12:00:00Z"
    assert view["accepted_by"] == "gateway"
    other = await handlers.job_status(job_id, user_id="bob", token="bob", deps=f.deps)
    assert other.status == 404


async def test_a_job_whose_command_was_parked_reads_as_failed_with_the_reason(f: Fakes) -> None:
    job_id = await submit(f, count=5)
    f.commands.parked[job_id] = "the message is 2000000 bytes, over the 1000000-byte Kafka message limit"
    answer = await handlers.job_status(job_id, user_id="alice", token="alice", deps=f.deps)
    assert answer.status == 200
    view = JobPublic.model_validate(answer.body)
    assert view.status == "failed"
    assert view.stop_reason == "undeliverable"
    assert view.error is not None
    assert view.error["code"] == "command_undeliverable"
    assert "Kafka message limit" in view.error["reason"]
    with pytest.raises(Conflict):  # a failed job cannot be cancelled
        await handlers.cancel(job_id, user_id="alice", token="alice", deps=f.deps)


async def test_the_generator_view_wins_once_it_knows_the_job(f: Fakes) -> None:
    job_id = await submit(f, count=5)
    f.generator.put(job_id, "alice", status="running", counts={"succeeded": 2})
    answer = await handlers.job_status(job_id, user_id="alice", token="alice", deps=f.deps)
    assert (answer.status, answer.body["status"], answer.body["counts"]) == (200, "running", {"succeeded": 2})


async def test_result_and_history_pass_the_query_on(f: Fakes) -> None:
    query = ResultQuery(limit=10, offset=20, include="rejected")
    assert (await handlers.result("j", query, token="alice", deps=f.deps)).status == 200
    await handlers.result("j", ResultQuery(), token="alice", deps=f.deps)
    await handlers.history_job("j", attempts_limit=7, token="alice", deps=f.deps)
    assert f.generator.calls == [
        ("get_result", ("j", {"limit": 10, "offset": 20, "include": "rejected"})),
        ("get_result", ("j", {"limit": 100, "offset": 0})),
        ("history_job", ("j", 7)),
    ]


# ------------------------------------------------------------------------------------------------ cancel
async def test_cancel_of_a_queued_job(f: Fakes) -> None:
    job_id = await submit(f, count=5)
    accepted = await handlers.cancel(job_id, user_id="alice", token="alice", deps=f.deps)
    assert (accepted.job_id, accepted.status) == (job_id, "cancelling")
    [cancel] = f.commands.of_type(GenerationCancelRequested)
    assert (cancel.job_id, cancel.user_id) == (job_id, "alice")


async def test_cancel_of_another_users_or_an_unknown_job_is_404(f: Fakes) -> None:
    job_id = await submit(f, count=5)
    for user, target in (("bob", job_id), ("alice", "unknown")):
        with pytest.raises(NotFound):
            await handlers.cancel(target, user_id=user, token=user, deps=f.deps)
    assert f.commands.of_type(GenerationCancelRequested) == []


async def test_cancel_of_an_ended_job_is_409(f: Fakes) -> None:
    f.generator.put("j1", "alice", status="completed")
    with pytest.raises(Conflict):
        await handlers.cancel("j1", user_id="alice", token="alice", deps=f.deps)
    assert f.commands.enqueued == []


async def test_cancel_when_the_generator_fails_is_its_error(f: Fakes) -> None:
    f.generator.answer = Answer(503, {"error": {"code": "service_unavailable", "message": "down"}})
    with pytest.raises(AppError) as info:
        await handlers.cancel("j1", user_id="alice", token="alice", deps=f.deps)
    assert (info.value.status_code, info.value.message) == (503, "down")
    assert f.commands.enqueued == []


# ------------------------------------------------------------------------------------------------ watching
async def test_watch_subscribes_before_reading_the_state_and_ends_on_the_terminal_event(f: Fakes) -> None:
    f.generator.put("j1", "alice", status="running")
    started = {"id": "e1", "type": "llmts.generation.started", "data": {}}
    done = {"id": "e2", "type": "llmts.generation.completed", "data": {}}
    # an event published while the state is being read must not be lost
    f.generator.on_get_job = lambda job_id: f.feed.publish(f"job:{job_id}", started)
    watch = handlers.JobWatch("j1", user_id="alice", token="alice", deps=f.deps)
    snapshot = await watch.open()
    f.generator.on_get_job = None
    f.feed.publish("job:j1", done)
    f.feed.publish("job:j1", {"id": "e3", "type": "llmts.generation.progress", "data": {}})
    seen = [e async for e in watch.events(snapshot)]
    assert [e["type"] for e in seen] == ["snapshot", started["type"], done["type"]]
    assert seen[0]["data"]["status"] == "running"
    watch.close()
    assert f.feed.watchers("job:j1") == 0


async def test_watch_of_an_ended_job_is_only_the_snapshot(f: Fakes) -> None:
    f.generator.put("j1", "alice", status="failed")
    watch = handlers.JobWatch("j1", user_id="alice", token="alice", deps=f.deps)
    seen = [e async for e in watch.events(await watch.open())]
    assert [(e["type"], e["data"]["status"]) for e in seen] == [("snapshot", "failed")]


async def test_watch_of_another_users_job_is_404_and_leaves_no_subscription(f: Fakes) -> None:
    f.generator.put("j1", "alice")
    watch = handlers.JobWatch("j1", user_id="bob", token="bob", deps=f.deps)
    with pytest.raises(NotFound):
        await watch.open()
    assert f.feed.watchers("job:j1") == 0


async def test_watch_rereads_the_state_when_idle_and_ends_when_it_is_terminal(f: Fakes) -> None:
    f.generator.put("j1", "alice", status="running")
    watch = handlers.JobWatch("j1", user_id="alice", token="alice", deps=f.deps, poll_s=0.01)
    snapshot = await watch.open()
    f.generator.put("j1", "alice", status="cancelled")  # its terminal event went to another replica
    seen = [e async for e in watch.events(snapshot)]
    assert [e["data"]["status"] for e in seen] == ["running", "cancelled"]
    watch.close()


async def test_watch_keeps_waiting_while_the_job_runs(f: Fakes) -> None:
    f.generator.put("j1", "alice", status="running")
    watch = handlers.JobWatch("j1", user_id="alice", token="alice", deps=f.deps, poll_s=0.01)
    events = watch.events(await watch.open())
    assert (await anext(events))["type"] == "snapshot"
    reread_twice = asyncio.Event()
    f.generator.on_get_job = lambda _: (
        reread_twice.set() if sum(1 for c in f.generator.calls if c[0] == "get_job") >= 3 else None
    )
    pending = asyncio.ensure_future(anext(events))
    await reread_twice.wait()  # the state was re-read twice and is still running
    assert not pending.done()
    f.feed.publish("job:j1", {"id": "e9", "type": "llmts.generation.failed", "data": {}})
    assert (await pending)["type"] == "llmts.generation.failed"
    watch.close()


# ------------------------------------------------------------------------------------------------ adapter
def test_an_upstream_body_that_is_not_json_becomes_an_upstream_error() -> None:
    answer = answer_of("generator", httpx.Response(502, content=b"<html>bad gateway</html>"))
    assert answer.status == 502
    assert answer.body["error"]["code"] == "upstream_error"
    assert "generator" in answer.body["error"]["message"]
    assert answer_of("generator", httpx.Response(200, json={"a": 1})) == Answer(200, {"a": 1})
