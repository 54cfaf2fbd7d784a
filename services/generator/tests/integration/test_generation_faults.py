"""Repair, retries, fatal provider errors, dedup, caps, cancel — against the fake OpenRouter."""

from __future__ import annotations

import time
import uuid

import pytest
from services.generator.tests.integration.conftest import Harness
from services.generator.tests.integration.test_generation_jobs import assert_consistent, items_of
from services.generator.tests.support import command

from llmts_common.contracts import GenerationCancelRequested


def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def chat_bodies(h: Harness) -> list[dict]:
    return [r["body"] for r in h.fake.stats()["last_requests"] if r["path"] == "/chat/completions"]


async def test_repair_feeds_back_the_errors(h: Harness) -> None:
    owner = user()
    h.fake.configure(script=["invalid_json", "ok"])
    msg = command(owner, count=1, concurrency=1)
    doc = await h.run(msg)
    assert doc["status"] == "completed"
    first, second = chat_bodies(h)[-2:]
    assert len(first["messages"]) == 2
    roles = [m["role"] for m in second["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert second["messages"][2]["content"]  # the previous (invalid) answer
    repair = second["messages"][3]["content"]
    assert "Your previous answer is not valid" in repair
    assert "- $" in repair  # at least one error with its path
    items = await items_of(h, msg.job_id, owner)
    assert items[0]["attempts"] == 2
    await assert_consistent(h, msg.job_id, owner, 1)


async def test_repair_is_bounded(h: Harness) -> None:
    owner = user()
    h.fake.configure(script=["invalid_json", "invalid_json", "invalid_json", "ok"])
    msg = command(owner, count=1, concurrency=1, max_attempts_per_item=4)
    await h.run(msg)
    bodies = chat_bodies(h)[-4:]
    assert [len(b["messages"]) for b in bodies] == [2, 4, 4, 4]  # never a growing transcript


async def test_429_retry_after_is_honoured(h: Harness) -> None:
    owner = user()
    h.fake.configure(script=[{"kind": "status", "status": 429, "retry_after_s": 1}, "ok"])
    msg = command(owner, count=1, concurrency=1)
    doc = await h.run(msg)
    assert doc["status"] == "completed"
    reqs = [r for r in h.fake.stats()["last_requests"] if r["path"] == "/chat/completions"][-2:]
    assert reqs[1]["ts"] - reqs[0]["ts"] >= 1.0
    assert doc["counts"]["attempts"] == 2  # both calls recorded (billing) …
    assert doc["counts"]["item_attempts"] == 1  # … but only one item attempt
    attempts = [a async for a in h.gen.repo.attempts.find({"job_id": msg.job_id})]
    assert sorted(a["outcome"] for a in attempts) == ["retried", "valid"]
    retried = next(a for a in attempts if a["outcome"] == "retried")
    assert retried["error"]["code"] == "rate_limited"
    assert retried["error"]["retry_after"] == pytest.approx(1.0)


async def test_5xx_is_retried(h: Harness) -> None:
    owner = user()
    h.fake.configure(script=["503", "500", "502", "ok", "ok"])
    msg = command(owner, count=2, concurrency=1)
    doc = await h.run(msg)
    assert doc["status"] == "completed"
    assert doc["counts"]["attempts"] == 5
    assert doc["counts"]["item_attempts"] == 2
    await assert_consistent(h, msg.job_id, owner, 2)


async def test_402_stops_the_job_with_a_clear_reason(h: Harness) -> None:
    owner = user()
    h.fake.configure(script=["ok", "402"])
    msg = command(owner, count=5, concurrency=1)
    doc = await h.run(msg)
    assert doc["status"] == "failed"
    assert doc["error"]["code"] == "insufficient_credits"
    assert "402" in doc["error"]["reason"]
    assert doc["counts"]["succeeded"] == 1  # finished items are kept
    failed = h.tap.events(msg.job_id, "failed")
    assert failed[-1]["data"]["code"] == "insufficient_credits"
    assert h.fake.stats()["calls"] == 2  # nothing after the 402


async def test_code_fenced_json_is_accepted(h: Harness) -> None:
    owner = user()
    h.fake.configure(rate_code_fence=1.0)
    msg = command(owner, count=3, concurrency=2)
    doc = await h.run(msg)
    assert doc["status"] == "completed"
    assert doc["counts"]["item_attempts"] == 3  # no repair needed
    assert h.fake.stats()["by_outcome"].get("code_fence") == 3


async def test_duplicates_are_regenerated(h: Harness) -> None:
    owner = user()
    h.fake.configure(script=["ok", "duplicate", "ok"])
    msg = command(owner, count=2, concurrency=1)
    doc = await h.run(msg)
    assert doc["status"] == "completed"
    attempts = [a async for a in h.gen.repo.attempts.find({"job_id": msg.job_id})]
    assert sorted(a["outcome"] for a in attempts) == ["duplicate", "valid", "valid"]
    assert "identical to an item that was already generated" in chat_bodies(h)[-1]["messages"][-1]["content"]
    await assert_consistent(h, msg.job_id, owner, 2)


async def test_duplicate_slot_is_rejected_and_replaced(h: Harness) -> None:
    owner = user()
    h.fake.configure(script=["ok", "duplicate", "ok"])
    msg = command(owner, count=2, concurrency=1, max_attempts_per_item=1)
    doc = await h.run(msg)
    assert doc["status"] == "completed"
    assert doc["counts"]["rejected"] == 1
    rejected = h.tap.events(msg.job_id, "item_rejected")
    assert rejected[0]["data"]["reason"] == "duplicate"
    items = await items_of(h, msg.job_id, owner, include_rejected=True)
    assert [i["status"] for i in items] == ["accepted", "accepted", "rejected"]
    assert items[2]["last_output"]
    await assert_consistent(h, msg.job_id, owner, 2)


async def test_rejected_items_keep_output_and_errors(h: Harness) -> None:
    owner = user()
    h.fake.configure(rate_invalid_json=1.0)
    msg = command(owner, count=2, concurrency=2, max_attempts_per_item=2)
    doc = await h.run(msg)
    assert doc["status"] == "failed"  # 0 of 2 items: failed, with the reason, not completed_with_errors
    assert doc["stop_reason"] == "attempt_budget_exhausted"
    assert doc["error"]["code"] == "no_valid_items"
    assert doc["error"]["reason"].startswith("0 of 2 items succeeded")
    assert doc["counts"]["succeeded"] == 0
    assert doc["counts"]["item_attempts"] == 6  # budget = 2 items × 2 attempts × 1.5
    # a slot is rejected after its 2 attempts; a slot the budget stops after 1 is not rejected, so with 2 slots in
    # flight the 6 attempts end as 3 rejected (the last slot used both) or 2 (the last two were cut at 1 each)
    rejected = doc["counts"]["rejected"]
    assert rejected in (2, 3)
    items = await items_of(h, msg.job_id, owner, include_rejected=True)
    assert len(items) == rejected
    assert [i["attempts"] for i in items] == [2] * rejected
    assert {i["status"] for i in items} == {"rejected"}
    assert all(i["errors"] and i["last_output"] is not None for i in items)
    failed = h.tap.events(msg.job_id, "failed")[-1]["data"]
    assert failed["code"] == "no_valid_items"
    assert not h.tap.events(msg.job_id, "completed")


async def test_error_rate_breaker(h: Harness) -> None:
    owner = user()
    h.fake.configure(rate_invalid_json=1.0)
    msg = command(owner, count=30, concurrency=4, max_attempts_per_item=3)
    doc = await h.run(msg)
    assert doc["status"] == "failed"
    assert doc["stop_reason"] == "error_rate"
    assert doc["error"]["code"] == "error_rate"
    assert doc["counts"]["item_attempts"] < 30  # stopped long before the 90-attempt budget


async def test_max_cost_cap(h: Harness) -> None:
    owner = user()
    probe = command(owner, count=2, concurrency=1)
    done = await h.run(probe)
    per_call = done["usage"]["cost_usd"] / done["counts"]["attempts"]
    cap = per_call * 5.5
    msg = command(owner, count=40, concurrency=2, max_cost_usd=cap)
    doc = await h.run(msg)
    assert doc["status"] == "stopped"  # the user's cap, not an error
    assert doc["stop_reason"] == "max_cost_reached"
    done = h.tap.events(msg.job_id, "completed")[-1]["data"]
    assert (done["status"], done["stop_reason"]) == ("stopped", "max_cost_reached")
    assert doc["usage"]["cost_usd"] <= cap + per_call * 0.5
    assert 3 <= doc["counts"]["succeeded"] < 40
    await assert_consistent(h, msg.job_id, owner, 40)


async def test_cancel_keeps_finished_items_and_bills_every_call_served(h: Harness) -> None:
    owner = user()
    h.fake.configure(latency_ms=400)
    msg = command(owner, count=50, concurrency=3)
    calls_before = h.fake.stats()["calls"]
    await h.submit(msg)
    await h.wait_status(msg.job_id, lambda d: d["counts"]["succeeded"] >= 3, within=20)
    t0 = time.monotonic()
    await h.submit(GenerationCancelRequested(job_id=msg.job_id, user_id=owner))
    doc = await h.wait_status(msg.job_id, lambda d: d["status"] == "cancelled", within=10)
    print(f"cancel: job cancelled {time.monotonic() - t0:.2f} s after the command")
    assert 3 <= doc["counts"]["succeeded"] < 50
    await h.tap.wait_for(msg.job_id, lambda evs: any(e["type"].endswith("cancelled") for e in evs), 10)
    settled = await h.wait_status(msg.job_id, lambda d: bool(d.get("settled")), within=10)
    await assert_consistent(h, msg.job_id, owner, 50)
    # the calls at the provider when the cancel came were awaited (CANCEL_DRAIN_SECONDS), not abandoned: every call
    # the provider served is recorded as an attempt and charged, and none is still open there
    assert h.fake.stats()["in_flight"] == 0
    started = h.fake.stats()["calls"] - calls_before
    print(f"cancel: provider calls started {started}, attempts recorded {settled['counts']['attempts']}")
    assert started == settled["counts"]["attempts"]


async def test_cancel_by_someone_else_is_ignored(h: Harness) -> None:
    owner = user()
    h.fake.configure(latency_ms=100)
    msg = command(owner, count=6, concurrency=2)
    await h.submit(msg)
    await h.submit(GenerationCancelRequested(job_id=msg.job_id, user_id=user()))
    doc = await h.wait_status(msg.job_id, lambda d: d["status"] == "completed", within=20)
    assert not doc.get("cancel_requested")


async def test_render_error_fails_the_job(h: Harness) -> None:
    from services.generator.tests.support import template

    owner = user()
    tpl = template(prompts={"system": "", "user": "{{ 1 / 0 }}"})
    msg = command(owner, count=2, template=tpl)
    doc = await h.run(msg)
    assert doc["status"] == "failed"
    assert doc["error"]["code"] == "render_error"
