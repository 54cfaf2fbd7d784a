"""Seed rows and sampled values in batch-mode jobs (issue 18 #1–#2): each line's prompt holds its target's sampled
values and the accepted items record them; a sampler that fails for an item fails the job before any line is sent."""

from __future__ import annotations

import json
import re
from typing import Any

from services.generator.tests import support
from services.generator.tests.fakes import ScriptedProvider
from services.generator.tests.unit.test_batch_jobs import FakeBatchApi, claim, valid_text
from services.generator.tests.unit.test_runner import SCHEMA, harness

from llmts_common.contracts import GenerationRequested

PROMPT = "Review {{ index }}: a {{ tone }} one."
SENT = re.compile(r"Review (\d+): a (formal|friendly) one\.")


def batch_command(n: int, variables: dict[str, Any]) -> GenerationRequested:
    tpl = support.template(
        id="tpl-b", schema=SCHEMA, variables=variables, prompts={"system": "s", "user": PROMPT}
    )
    return support.command("u1", n, template=tpl, mode="batch", seed=3, cache="off")


TONE = {"tone": {"sampler": "category", "values": ["formal", "friendly"]}}


async def test_batch_lines_hold_the_sampled_values_and_items_record_them() -> None:
    h = harness()
    sent: dict[int, str] = {}

    def answer(_n: int, cid: str) -> str:
        return json.dumps({"title": f"item {cid}", "rating": 3})

    api = FakeBatchApi(answer)
    api.release.set()
    msg = batch_command(6, TONE)
    await h.submit(msg)
    runner = await claim(h, msg, api, ScriptedProvider(valid_text))
    assert await runner.run() == "completed"

    for lines in api.batches.values():
        for line in lines:
            found = SENT.search(line["body"]["messages"][-1]["content"])
            assert found is not None
            sent[int(found.group(1))] = found.group(2)
    items = h.repo.accepted(msg.job_id)
    assert len(items) == 6
    assert {d["target"]: d["provenance"]["sampled"]["tone"] for d in items} == sent
    assert all(d["provenance"]["attempts"] == 1 for d in items)


async def test_a_sampler_failing_for_an_item_fails_the_batch_job_before_any_line() -> None:
    h = harness()
    api = FakeBatchApi(lambda _n, _cid: "{}")
    broken = {"tone": {"sampler": "expression", "template": "{{ 1 // 0 }}"}}
    msg = batch_command(3, broken)
    await h.submit(msg)
    runner = await claim(h, msg, api, ScriptedProvider(valid_text))
    assert await runner.run() == "failed"
    assert h.repo.jobs[msg.job_id]["error"]["code"] == "render_error"
    assert api.batches == {}
