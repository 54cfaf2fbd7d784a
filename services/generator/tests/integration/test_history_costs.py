"""``GET /history/{id}`` of a job on the fake OpenRouter: reported vs reconciled cost (a call whose 200 carried an
error was billed by the provider but reported nothing), spend per attempt kind (first / repair / retry), the
prompt cache figures — after the cost reconciler looked the attempts up in the fake's books."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from services.generator.tests.integration.conftest import Harness
from services.generator.tests.support import command, template

from llmts_common.contracts import ModelRef
from llmts_generator.adapters.reconciliations import MongoReconciliations
from llmts_generator.reconciler import CostReconciler, ReconcileConfig, books_from


async def reconcile_all(h: Harness) -> None:
    config = ReconcileConfig(sample_rate=1.0, delay_s=0.0, per_second=1000.0, batch=1000)
    reconciler = CostReconciler(
        MongoReconciliations(h.gen.runtime.db), books_from(h.gen.providers), config, clock=_now
    )
    await reconciler.pass_once()


def _now() -> datetime:
    return datetime.now(UTC)


async def test_history_shows_reported_and_reconciled_cost_and_spend_per_kind(h: Harness) -> None:
    owner = f"u-{uuid.uuid4().hex[:8]}"
    # call 1: a 200 carrying an error (billed, nothing reported) → retried; call 2: invalid → repaired
    h.fake.configure(script=["error_200", "invalid_json"])
    msg = command(owner, count=3, concurrency=1, cache="off")
    await h.run(msg)
    before = (await h.http.get(f"/history/{msg.job_id}", headers=h.auth(owner))).json()["costs"]
    await reconcile_all(h)
    r = await h.http.get(f"/history/{msg.job_id}", headers=h.auth(owner))
    assert r.status_code == 200, r.text
    body = r.json()
    costs = body["costs"]
    attempts = body["attempts"]["items"]
    assert costs["reported_cost_usd"] == pytest.approx(body["usage"]["cost_usd"])
    assert costs["attempts"]["reconciled"] == len(attempts)
    assert costs["attempts"]["pending"] == 0
    assert before["attempts"]["pending"] >= 1  # the cut call at least waited for its lookup
    cut = [a for a in attempts if a["error"] is not None]
    assert len(cut) == 1
    assert cut[0]["cost_usd"] == 0.0
    assert cut[0]["reconcile"] == "done"
    assert cut[0]["reconciled_cost_usd"] > 0
    assert costs["difference_usd"] == pytest.approx(cut[0]["reconciled_cost_usd"])
    assert costs["reconciled_cost_usd"] > costs["reported_cost_usd"]
    kinds = costs["by_kind"]
    assert set(kinds) == {"first", "retry", "repair"}
    assert kinds["retry"]["calls"] == 1
    assert kinds["retry"]["cost_usd"] > 0  # the retry's own call was reported
    assert kinds["repair"]["calls"] == 1
    assert sum(k["calls"] for k in kinds.values()) == len(attempts)
    assert sum(k["best_cost_usd"] for k in kinds.values()) == pytest.approx(costs["reconciled_cost_usd"])
    assert costs["prompt_cache"] == {"cached_tokens": 0, "cache_write_tokens": 0, "saved_usd": 0.0}


async def test_prompt_cache_reads_are_recorded_and_their_saving_shown(h: Harness) -> None:
    owner = f"u-{uuid.uuid4().hex[:8]}"
    system = "You write product reviews for a catalogue. " * 30  # the head every call shares
    msg = command(
        owner,
        count=3,
        concurrency=1,
        cache="off",
        model=ModelRef(provider="openrouter", id="anthropic/claude-3.5-haiku"),
        template=template(prompts={"system": system, "user": "Write review number {{ index }}."}),
    )
    await h.run(msg)
    sent = h.fake.state.last_requests[-1]["body"]["messages"][0]["content"]
    assert sent[0]["cache_control"] == {"type": "ephemeral"}  # the breakpoint on the system message
    await reconcile_all(h)
    body = (await h.http.get(f"/history/{msg.job_id}", headers=h.auth(owner))).json()
    cache = body["costs"]["prompt_cache"]
    reads = [a for a in body["attempts"]["items"] if a["cached_tokens"] > 0]
    assert len(reads) == len(body["attempts"]["items"]) - 1  # every call after the first read the head
    assert cache["cache_write_tokens"] > 0
    assert cache["cached_tokens"] == sum(a["cached_tokens"] for a in reads)
    assert cache["saved_usd"] > 0
