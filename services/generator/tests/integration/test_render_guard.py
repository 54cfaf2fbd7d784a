"""Issue 14 finding 1: a pathological prompt is refused with a 422 and never stalls the generator's event loop
(rendering runs in worker processes with a hard deadline). Functional, not timed: /health must be answered
while the bad preview is still in flight — with rendering on the event loop no request was served until the
render ended."""

from __future__ import annotations

import asyncio

from services.generator.tests.integration.conftest import Harness
from services.generator.tests.support import command, template

# the issue's ~600-byte prompt with a variant that slips under every size check: only the deadline stops it
PATHOLOGICAL = "{% set x = [1] * 1000000 %}" + "{% set y = x == x %}" * 2000


async def test_health_is_answered_while_a_pathological_preview_renders(h: Harness) -> None:
    msg = command(
        "render-attacker", count=3, template=template(prompts={"system": "s", "user": PATHOLOGICAL})
    )
    body = {"request": msg.model_dump(mode="json"), "items": 3}
    preview = asyncio.create_task(h.http.post("/preview", json=body, headers=h.auth("render-attacker")))
    answered_during = 0
    while not preview.done():
        health = await h.http.get("/health")
        assert health.status_code == 200
        if not preview.done():
            answered_during += 1
        await asyncio.sleep(0.02)
    resp = await preview
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "render_error"
    assert error["details"]["limit"] == "max_render_seconds"
    assert answered_during >= 3  # the event loop kept serving while the render ran elsewhere


async def test_preview_still_renders_after_a_refused_render(h: Harness) -> None:
    msg = command("render-user", count=2)
    resp = await h.http.post(
        "/preview", json={"request": msg.model_dump(mode="json"), "items": 2}, headers=h.auth("render-user")
    )
    assert resp.status_code == 200, resp.text
    assert [i["user"] for i in resp.json()["items"]] == ["Write review number 0.", "Write review number 1."]
