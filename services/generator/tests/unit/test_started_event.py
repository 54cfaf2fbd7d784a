"""GenerationStarted tells consumers how to read the job's items: the template's name, output format and item
schema — the schema for every json template, with ``item_schema_enforced`` saying whether items were validated
against it (strict) or not (custom / none)."""

from __future__ import annotations

import pytest
from services.generator.tests import support
from services.generator.tests.fakes import ScriptedProvider
from services.generator.tests.unit.test_runner import SCHEMA, harness, review

from llmts_common.contracts import GenerationStarted


@pytest.mark.parametrize(("mode", "enforced"), [("strict", True), ("custom", False), ("none", False)])
async def test_the_started_event_carries_the_schema_and_whether_it_was_enforced(
    mode: str, enforced: bool
) -> None:
    h = harness()
    template = support.template(name="Отзывы", schema=SCHEMA, validation={"mode": mode, "rules": []})
    msg = support.command("u1", 2, template=template, validation_mode=mode)
    await h.submit(msg)
    runner = await h.claim(msg, ScriptedProvider(lambda call, _req: review(call)))
    assert await runner.run() == "completed"
    [started] = h.events.of(msg.job_id, GenerationStarted.TYPE)
    assert started["template_name"] == "Отзывы"
    assert started["output_format"] == "json"
    assert started["item_schema"] == SCHEMA
    assert started["item_schema_enforced"] is enforced


async def test_a_text_template_has_no_schema() -> None:
    h = harness()
    template = support.template(output_format="text", schema=None, validation={"mode": "strict", "rules": []})
    msg = support.command("u1", 1, template=template)
    await h.submit(msg)
    runner = await h.claim(msg, ScriptedProvider(lambda call, _req: f"text number {call}"))
    assert await runner.run() == "completed"
    [started] = h.events.of(msg.job_id, GenerationStarted.TYPE)
    assert (started["output_format"], started["item_schema"], started["item_schema_enforced"]) == (
        "text",
        None,
        None,
    )
