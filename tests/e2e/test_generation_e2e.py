"""Done-when scenario of the generation issue, through the gateway only: a 100-item job from an example template,
watched live over the WebSocket, ends with exactly 100 valid items and their cost."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import websockets

from tests.e2e import api
from tests.e2e.conftest import register_and_login
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e

N = 100


async def test_100_items_watched_over_websocket(stack: Stack, gateway: httpx.AsyncClient) -> None:
    await api.require_routes(gateway, [("POST", "/generate"), ("GET", "/generate/{job_id}/result")])
    user = await register_and_login(gateway, "gen100")
    r = await gateway.post("/templates/examples/quiz/import", headers=user.headers)
    assert r.status_code == 201, r.text
    template_id = r.json()["template"]["id"]
    r = await gateway.post(
        "/generate",
        json={
            "template_id": template_id,
            "count": N,
            "concurrency": 8,
            "model": {"id": "openai/gpt-4o-mini"},
        },
        headers=user.headers,
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    ws_url = stack.gateway.replace("http://", "ws://") + f"/ws/generate/{job_id}?token={user.access_token}"
    messages: list[dict[str, Any]] = []
    async with websockets.connect(ws_url, max_size=None, open_timeout=30) as ws:
        async for raw in ws:
            messages.append(json.loads(raw))
    assert messages[0]["type"] == "snapshot"
    final = messages[-1]
    final_status = final["data"].get("status")
    assert final_status == "completed", final
    job = (await gateway.get(f"/generate/{job_id}", headers=user.headers)).json()
    assert job["counts"]["succeeded"] == N
    assert job["usage"]["cost_usd"] > 0
    items: list[dict[str, Any]] = []
    while len(items) < N:
        page = await gateway.get(
            f"/generate/{job_id}/result", params={"limit": 50, "offset": len(items)}, headers=user.headers
        )
        assert page.status_code == 200
        body = page.json()
        assert body["total"] == N
        items += body["items"]
    assert [i["index"] for i in items] == list(range(N))
    assert all(i["usage"]["cost_usd"] >= 0 and i["attempts"] >= 1 for i in items)
    assert sum(i["usage"]["cost_usd"] for i in items) <= job["usage"]["cost_usd"] + 1e-9
