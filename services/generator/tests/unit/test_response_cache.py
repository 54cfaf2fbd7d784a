"""Response cache and seeds: keys (canonical, per request, per seed), seed determinism, and the runner on in-memory
ports with an in-memory cache: a re-run with the same seed makes no call and costs 0, a changed validation rule
re-validates cached answers without a call, ``refresh`` calls and overwrites, ``off`` neither reads nor writes,
another user or another seed never hits."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from services.generator.tests import support
from services.generator.tests.fakes import FakeResponseCache, ScriptedProvider
from services.generator.tests.unit.test_runner import OWNER, SCHEMA, Harness, harness

from llmts_common.contracts import GenerationRequested
from llmts_generator.domain.caching import cache_key, canonical_body, item_seed, job_seed
from llmts_generator.runner import JobRunner
from llmts_providers import ChatRequest

# --- keys and seeds ------------------------------------------------------------------------------------------


def test_cache_key_is_canonical_and_ignores_transport() -> None:
    a = {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0.2, "stream": False}
    b = {"stream": True, "temperature": 0.2, "messages": [{"role": "user", "content": "x"}], "model": "m"}
    assert canonical_body(a) == canonical_body(b)
    assert cache_key("openrouter", a, 1) == cache_key("openrouter", b, 1)


@pytest.mark.parametrize(
    "change",
    [
        {"model": "other"},
        {"temperature": 0.3},
        {"messages": [{"role": "user", "content": "y"}]},
        {"response_format": {"type": "json_object"}},
    ],
)
def test_cache_key_changes_with_anything_that_determines_the_answer(change: dict[str, Any]) -> None:
    base = {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0.2}
    assert cache_key("openrouter", base, 1) != cache_key("openrouter", {**base, **change}, 1)
    assert cache_key("openrouter", base, 1) != cache_key("openrouter", base, 2)
    assert cache_key("openrouter", base, 1) != cache_key("ollama", base, 1)


def test_seeds_are_deterministic_and_distinct() -> None:
    assert job_seed(42, "job-a") == 42
    assert job_seed(None, "job-a") == job_seed(None, "job-a") != job_seed(None, "job-b")
    seeds = {item_seed(42, target, attempt) for target in range(200) for attempt in (1, 2, 3)}
    assert len(seeds) == 600  # no two item attempts share a seed
    assert item_seed(42, 5, 1) == item_seed(42, 5, 1) != item_seed(43, 5, 1)
    assert all(0 <= s <= 2**31 - 1 for s in seeds)


# --- the runner with a cache ---------------------------------------------------------------------------------


def _answer(_call: int, request: ChatRequest) -> str:
    """A deterministic answer per prompt: review number k (the first user prompt names it) rated k % 5 + 1; a
    repair (the conversation goes on) gets rating 1."""
    k = int(re.findall(r"\d+", request.messages[1].content)[-1])
    if len(request.messages) > 2:
        return json.dumps({"title": f"review {k} repaired", "rating": 1})
    return json.dumps({"title": f"review {k}", "rating": k % 5 + 1})


def _command(
    user: str = "u1", *, seed: int = 7, cache: str = "use", rules: Any = None
) -> GenerationRequested:
    tpl = support.template(id="tpl-1", schema=SCHEMA, validation={"mode": "strict", "rules": rules or []})
    return support.command(user, 12, template=tpl, concurrency=4, seed=seed, cache=cache)


async def _run(h: Harness, msg: GenerationRequested, cache: FakeResponseCache) -> ScriptedProvider:
    return (await _runner(h, msg, cache))[0]


async def _runner(
    h: Harness, msg: GenerationRequested, cache: FakeResponseCache
) -> tuple[ScriptedProvider, JobRunner]:
    provider = ScriptedProvider(_answer)
    await h.submit(msg)
    doc = await h.repo.claim(msg.job_id, OWNER, h.clock(), timedelta(seconds=15))
    assert doc is not None
    runner = JobRunner(doc, dataclasses.replace(h.deps(provider), cache=cache))
    await runner.run()
    return provider, runner


def _items(h: Harness, job_id: str) -> list[str]:
    return sorted(d["data_json"] for d in h.repo.accepted(job_id))


async def test_rerun_with_the_same_seed_is_served_from_the_cache_at_no_cost() -> None:
    h, cache = harness(), FakeResponseCache()
    first = _command()
    called = await _run(h, first, cache)
    assert len(called.calls) == 12
    assert len(cache.entries) == 12
    assert all(c.request.seed is not None for c in called.calls)  # the item seed goes to the provider

    again = _command()
    single_gets = cache.single_gets
    provider, runner = await _runner(h, again, cache)

    assert provider.calls == []
    assert cache.single_gets == single_gets  # every answer was read ahead (prefetch), none one by one
    assert _items(h, again.job_id) == _items(h, first.job_id)
    doc = h.repo.jobs[again.job_id]
    assert doc["status"] == "completed"
    assert doc["usage"]["cost_usd"] == 0.0
    assert doc["usage"]["prompt_tokens"] == 0
    assert doc["usage"]["saved_cost_usd"] == pytest.approx(12 * called.cost_per_call)
    assert (doc["counts"]["cache_hits"], doc["counts"]["cache_misses"]) == (12, 0)
    attempts = h.repo.attempts_of_job(again.job_id)
    assert all(a["cached"] and a["cost_usd"] == 0.0 for a in attempts)
    first_doc = h.repo.jobs[first.job_id]
    assert (first_doc["counts"]["cache_hits"], first_doc["counts"]["cache_misses"]) == (0, 12)
    progress = runner.progress_event(force=True)
    assert progress is not None
    assert (progress.cache_hits, progress.cache_misses) == (12, 0)


async def test_changed_validation_rules_revalidate_cached_answers_without_a_call() -> None:
    h, cache = harness(), FakeResponseCache()
    await _run(h, _command(), cache)

    strict = _command(rules=[{"path": "rating", "maximum": 4}])  # refuses the cached answers rated 5
    provider = await _run(h, strict, cache)

    attempts = h.repo.attempts_of_job(strict.job_id)
    cached = [a for a in attempts if a["cached"]]
    assert len(cached) == 12  # every first answer came from the cache ...
    refused = sorted(a["target"] for a in cached if a["outcome"] == "invalid")
    assert refused == [4, 9]  # ... those rated 5 are refused now
    assert len(provider.calls) == 2  # only their repairs were called (a repair is another request)
    assert all(len(c.request.messages) > 2 for c in provider.calls)
    assert h.repo.jobs[strict.job_id]["status"] == "completed"
    assert all(json.loads(d)["rating"] <= 4 for d in _items(h, strict.job_id))


async def test_refresh_calls_and_overwrites_and_off_neither_reads_nor_writes() -> None:
    h, cache = harness(), FakeResponseCache()
    await _run(h, _command(), cache)
    puts = cache.puts

    refreshed = await _run(h, _command(cache="refresh"), cache)
    assert len(refreshed.calls) == 12
    assert cache.puts == puts + 12

    gets, puts = cache.gets, cache.puts
    off = await _run(h, _command(cache="off"), cache)
    assert len(off.calls) == 12
    assert (cache.gets, cache.puts) == (gets, puts)


async def test_no_hit_for_another_user_or_another_seed() -> None:
    h, cache = harness(), FakeResponseCache()
    await _run(h, _command("u1"), cache)

    other_user = await _run(h, _command("u2"), cache)
    other_seed = await _run(h, _command("u1", seed=8), cache)

    assert len(other_user.calls) == 12
    assert len(other_seed.calls) == 12
    assert {u for u, _ in cache.entries} == {"u1", "u2"}


def test_a_job_with_a_random_seed_does_not_read_in_its_first_round() -> None:
    from llmts_generator.domain.caching import effective_cache_mode

    assert effective_cache_mode("use", seed_given=False, round_no=1) == "write"  # its keys cannot exist yet
    # a re-run with the recorded seed reads
    assert effective_cache_mode("use", seed_given=True, round_no=1) == "use"
    assert effective_cache_mode("use", seed_given=False, round_no=2) == "use"  # a later round may hit its own
    assert effective_cache_mode("refresh", seed_given=False, round_no=1) == "refresh"
    assert effective_cache_mode("off", seed_given=True, round_no=1) == "off"
