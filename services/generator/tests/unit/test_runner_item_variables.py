"""Sampled values in a running job (issue 18 #2) on in-memory ports: each target's prompt holds the values drawn for
it, its item's provenance records them, and a job that died and was resumed gives every target the same values as
an uninterrupted job with the same seed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from datetime import timedelta
from typing import Any

from services.generator.tests import support
from services.generator.tests.fakes import ScriptedProvider
from services.generator.tests.unit.test_runner import SCHEMA, harness, until

from llmts_common.contracts import GenerationRequested
from llmts_providers import ChatRequest

PROMPT = "Review {{ index }}: a {{ tone }} one with {{ stars }} stars."
SENT = re.compile(r"Review (\d+): a (formal|friendly) one with (\d) stars\.")
VARIABLES: dict[str, Any] = {
    "tone": {"sampler": "category", "values": ["formal", "friendly"], "weights": [1, 1]},
    "stars": {"sampler": "uniform", "type": "int", "low": 1, "high": 5},
}


def command(n: int) -> GenerationRequested:
    tpl = support.template(
        id="tpl-s", schema=SCHEMA, variables=VARIABLES, prompts={"system": "s", "user": PROMPT}
    )
    return support.command("u1", n, template=tpl, concurrency=2, seed=7, cache="off")


def answer(_call: int, req: ChatRequest) -> str:
    """An answer that repeats the prompt's sampled values (so each item shows what its prompt held)."""
    found = SENT.search(req.messages[-1].content)
    assert found is not None, req.messages[-1].content
    target, tone, stars = found.groups()
    return json.dumps({"title": f"{target} {tone}", "rating": int(stars)})


def by_target(items: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    out = {}
    for d in items:
        prov, data = d["provenance"], json.loads(d["data_json"])
        assert data == {
            "title": f"{d['target']} {prov['sampled']['tone']}",
            "rating": prov["sampled"]["stars"],
        }
        out[d["target"]] = prov["sampled"]
    return out


async def test_a_resumed_job_draws_what_an_uninterrupted_one_draws() -> None:
    n = 8
    h = harness()
    whole = command(n)
    await h.submit(whole)
    assert await (await h.claim(whole, ScriptedProvider(answer))).run() == "completed"
    expected = by_target(h.repo.accepted(whole.job_id))
    assert len(expected) == n
    assert {v["tone"] for v in expected.values()} == {"formal", "friendly"}
    # the round's diversity report, on the job and in its event: the sampled tones' counts next to their weights
    report = h.repo.jobs[whole.job_id]["diversity"]
    assert report["items"] == n
    formal = sum(v["tone"] == "formal" for v in expected.values())
    assert report["categories"]["tone"]["values"]["formal"] == {
        "count": formal,
        "share": formal / n,
        "target": 0.5,
    }
    (done,) = h.events.of(whole.job_id, "llmts.generation.completed")
    assert done["diversity"] == report

    never = asyncio.Event()

    async def hang(req: ChatRequest) -> str:
        await never.wait()
        return answer(0, req)

    first = ScriptedProvider(lambda call, req: answer(call, req) if call <= 3 else hang(req))
    broken = command(n)
    await h.submit(broken)
    runner = await h.claim(broken, first)
    task = asyncio.create_task(runner.run())
    await until(lambda: len(h.repo.accepted(broken.job_id)) == 3, "three items durable")
    task.cancel()  # the process dies
    with contextlib.suppress(asyncio.CancelledError):
        await task
    h.clock.now += timedelta(seconds=16)
    assert await (await h.claim(broken, ScriptedProvider(answer))).run() == "completed"
    assert by_target(h.repo.accepted(broken.job_id)) == expected  # same seed: same values per target


async def test_a_rejected_item_records_the_values_its_prompt_was_drawn_with() -> None:
    """Target 1's answers never validate: its rejected items carry the sampled values its prompts held (the same
    on every regeneration: fixed by the job seed and the target), like an accepted item's provenance."""
    h = harness()
    msg = command(4).model_copy(update={"max_attempts_per_item": 1})
    drawn: dict[int, tuple[str, int]] = {}

    def flaky(call: int, req: ChatRequest) -> str:
        found = SENT.search(req.messages[-1].content)
        assert found is not None
        target, tone, stars = found.groups()
        drawn[int(target)] = (tone, int(stars))
        return "not json" if target == "1" else answer(call, req)

    await h.submit(msg)
    status = await (await h.claim(msg, ScriptedProvider(flaky))).run()
    assert status == "completed_with_errors"  # target 1 never made it within the job's attempt budget
    rejected = h.repo.rejected(msg.job_id)
    assert rejected
    for d in rejected:
        prov = d["provenance"]
        assert d["target"] == 1
        assert (prov["sampled"]["tone"], prov["sampled"]["stars"]) == drawn[1]
        assert prov["attempts"] == 1
    (event, *_) = h.events.of(msg.job_id, "llmts.generation.item_rejected")
    assert event["provenance"] == rejected[0]["provenance"]
