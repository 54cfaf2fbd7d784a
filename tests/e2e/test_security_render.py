"""Issue 14 finding 1 through the gateway: a pathological prompt posted to ``/generate/preview`` is refused with
422 ``render_error``, and another user's requests are answered while it renders (rendering runs in the
generator's worker processes, never on its event loop). No timed assertions: durations are printed."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.e2e.conftest import User, register_and_login
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e

# the issue's ~600-byte prompt: a 1 Mi-item list, then its JSON 24 times (3 Mi characters each)
PATHOLOGICAL = "{% set x=[1]*1000000 %}" + "{% set y=x|tojson %}" * 24
# no filter, no loop, no call: only the generator's hard deadline stops it
COMPARISONS = "{% set x = [1] * 1000000 %}" + "{% set y = x == x %}" * 200 + "{% set z = x|sort %}" * 40


async def _template(client: httpx.AsyncClient, user: User, prompt: str) -> str:
    doc = {
        "name": "render attack",
        "output": {"format": "text"},
        "prompts": {"user": prompt},
        "model": {"provider": "openrouter", "id": "openai/gpt-4o-mini"},
    }
    r = await client.post("/templates", headers=user.headers, json=doc)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _bystander(client: httpx.AsyncClient, user: User, template_id: str, attack: asyncio.Task[httpx.Response]) -> int:  # fmt: skip
    """Another user's previews and reads while the attack is in flight; how many were answered meanwhile."""
    answered = 0
    while not attack.done():
        r = await client.post(
            "/generate/preview", headers=user.headers, json={"template_id": template_id, "count": 1}
        )
        assert r.status_code == 200, r.text
        assert (await client.get("/templates", headers=user.headers)).status_code == 200
        if not attack.done():
            answered += 1
        await asyncio.sleep(0.05)
    return answered


@pytest.mark.parametrize(
    ("prompt", "long"),
    [(PATHOLOGICAL, False), (COMPARISONS, True)],
    ids=["tojson-refused-by-size", "comparisons-refused-at-deadline"],
)
async def test_pathological_preview_is_refused_while_others_are_served(
    stack: Stack, prompt: str, long: bool
) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway, timeout=60.0) as client:
        attacker = await register_and_login(client, "render-attacker")
        other = await register_and_login(client, "render-bystander")
        bad = await _template(client, attacker, prompt)
        good = await _template(client, other, "Write item {{ index }}.")
        warm = await client.post(
            "/generate/preview", headers=other.headers, json={"template_id": good, "count": 1}
        )
        assert warm.status_code == 200, warm.text
        served_during = 0
        for _ in range(3):
            start = time.monotonic()
            attack = asyncio.create_task(
                client.post(
                    "/generate/preview", headers=attacker.headers, json={"template_id": bad, "count": 3}
                )
            )
            served_during += await _bystander(client, other, good, attack)
            resp = await attack
            print(f"attack refused after {time.monotonic() - start:.2f} s: {resp.status_code}")
            assert resp.status_code == 422, resp.text
            error = resp.json()["error"]
            assert error["code"] == "render_error"
            assert error["details"]["limit"] in ("max_render_seconds", "max_value_size")
        if long:  # a render that runs to the deadline: the other user was answered meanwhile
            assert served_during >= 1
