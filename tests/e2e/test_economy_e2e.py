"""Pay once (issue 17 #1-2), through the gateway only, against the fake OpenRouter: a re-run with the same seed is
served from the cache at $0 with the same items; cancel → resume ends with exactly N without paying again for the
accepted items; extend +k adds new indexes without duplicates; the cache never crosses users."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.e2e import api
from tests.e2e.conftest import User, register_and_login
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e

TERMINAL = {"completed", "completed_with_errors", "stopped", "failed", "cancelled"}


@pytest.fixture
async def fake(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The fake OpenRouter's control API; its latency is put back to 0 afterwards (the stack is shared)."""
    async with httpx.AsyncClient(base_url=stack.fake_openrouter, timeout=10.0) as client:
        yield client
        await client.post("/_fake/config", json={"latency_ms": 0})


async def _template(gateway: httpx.AsyncClient, user: User) -> str:
    r = await gateway.post("/templates/examples/quiz/import", headers=user.headers)
    assert r.status_code == 201, r.text
    return str(r.json()["template"]["id"])


async def _start(gateway: httpx.AsyncClient, user: User, template_id: str, count: int, **extra: Any) -> str:
    body = {"template_id": template_id, "count": count, "model": {"id": "openai/gpt-4o-mini"}, **extra}
    r = await gateway.post("/generate", json=body, headers=user.headers)
    assert r.status_code == 202, r.text
    return str(r.json()["job_id"])


async def _ended(
    gateway: httpx.AsyncClient, user: User, job_id: str, round_no: int = 1, wait_s: float = 90.0
) -> dict[str, Any]:
    """The job once round ``round_no`` has ended."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        r = await gateway.get(f"/generate/{job_id}", headers=user.headers)
        if r.status_code == 200:
            job: dict[str, Any] = r.json()
            if job["status"] in TERMINAL and int(job.get("round") or 1) == round_no:
                return job
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} round {round_no} did not end within {wait_s}s")


async def _items(gateway: httpx.AsyncClient, user: User, job_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        r = await gateway.get(
            f"/generate/{job_id}/result", params={"limit": 500, "offset": len(items)}, headers=user.headers
        )
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        if len(items) >= page["total"]:
            return items


async def _attempts(gateway: httpx.AsyncClient, user: User, job_id: str) -> list[dict[str, Any]]:
    r = await gateway.get(f"/history/{job_id}", params={"attempts_limit": 5000}, headers=user.headers)
    assert r.status_code == 200, r.text
    return list(r.json()["attempts"]["items"])


def _data(items: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(i["data"], sort_keys=True) for i in items)


async def test_rerun_hits_the_cache_at_no_cost_and_never_for_another_user(gateway: httpx.AsyncClient) -> None:
    await api.require_routes(gateway, [("POST", "/generate")])
    alice, bob = await register_and_login(gateway, "alice"), await register_and_login(gateway, "bob")
    template_id = await _template(gateway, alice)
    first = await _ended(gateway, alice, await _start(gateway, alice, template_id, 30, seed=1234))
    assert first["status"] == "completed"
    assert first["usage"]["cost_usd"] > 0
    assert first["seed"] == 1234

    again = await _ended(gateway, alice, await _start(gateway, alice, template_id, 30, seed=1234))

    assert again["status"] == "completed"
    assert again["usage"]["cost_usd"] == 0
    assert (again["counts"]["cache_hits"], again["counts"]["cache_misses"]) == (30, 0)
    assert again["saved_cost_usd"] == pytest.approx(first["usage"]["cost_usd"])
    assert _data(await _items(gateway, alice, again["job_id"])) == _data(
        await _items(gateway, alice, first["job_id"])
    )
    assert all(a["cached"] for a in await _attempts(gateway, alice, again["job_id"]))

    # the same request by another user (its own copy of the template) is never answered from alice's cache
    bob_template = await _template(gateway, bob)
    other = await _ended(gateway, bob, await _start(gateway, bob, bob_template, 30, seed=1234))
    assert other["status"] == "completed"
    assert other["counts"]["cache_hits"] == 0
    assert other["usage"]["cost_usd"] > 0


async def test_cancel_then_resume_ends_with_exactly_n_without_paying_twice(
    gateway: httpx.AsyncClient, fake: httpx.AsyncClient
) -> None:
    n = 40
    user = await register_and_login(gateway, "resume")
    template_id = await _template(gateway, user)
    await fake.post("/_fake/config", json={"latency_ms": 150})
    job_id = await _start(gateway, user, template_id, n, concurrency=4)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = (await gateway.get(f"/generate/{job_id}", headers=user.headers)).json()
        if job["counts"]["succeeded"] >= 8:
            break
        await asyncio.sleep(0.1)
    r = await gateway.delete(f"/generate/{job_id}", headers=user.headers)
    assert r.status_code == 202, r.text
    cancelled = await _ended(gateway, user, job_id)
    assert cancelled["status"] == "cancelled"
    kept = await _items(gateway, user, job_id)
    assert 8 <= len(kept) < n
    await fake.post("/_fake/config", json={"latency_ms": 0})

    r = await gateway.post(f"/generate/{job_id}/resume", headers=user.headers)
    assert r.status_code == 202, r.text
    assert (r.json()["round"], r.json()["items"]) == (2, n - len(kept))
    done = await _ended(gateway, user, job_id, round_no=2)

    assert done["status"] == "completed"
    items = await _items(gateway, user, job_id)
    assert [i["index"] for i in items] == list(range(n))
    assert items[: len(kept)] == kept  # the accepted items are kept as they were
    assert len(set(_data(items))) == n
    attempts = await _attempts(gateway, user, job_id)
    kept_targets = {i["inputs"]["target"] for i in kept}
    assert not [a for a in attempts if a.get("round") == 2 and a["target"] in kept_targets]
    r = await gateway.post(f"/generate/{job_id}/resume", headers=user.headers)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "job_not_reopenable")


async def test_extend_adds_new_items_without_duplicates(gateway: httpx.AsyncClient) -> None:
    user = await register_and_login(gateway, "extend")
    template_id = await _template(gateway, user)
    job_id = await _start(gateway, user, template_id, 20)
    first = await _ended(gateway, user, job_id)
    assert first["status"] == "completed"
    before = await _items(gateway, user, job_id)

    r = await gateway.post(f"/generate/{job_id}/extend", json={"count": 10}, headers=user.headers)
    assert r.status_code == 202, r.text
    done = await _ended(gateway, user, job_id, round_no=2)

    assert (done["status"], done["requested"], done["counts"]["succeeded"]) == ("completed", 30, 30)
    items = await _items(gateway, user, job_id)
    assert [i["index"] for i in items] == list(range(30))
    assert items[:20] == before
    assert len(set(_data(items))) == 30  # no duplicate of an existing item
    round_two = [a for a in await _attempts(gateway, user, job_id) if a.get("round") == 2]
    assert {a["target"] for a in round_two} <= set(range(20, 30))  # only the new items were paid for
    assert done["rounds"][0]["kind"] == "extend"
    # an export after the round holds the new items too (the exporter reads the items at export time)
    r = await gateway.post("/exports", headers=user.headers, json={"job_id": job_id, "format": "jsonl"})
    assert r.status_code == 202, r.text
    export_id = r.json()["export_id"]
    info = await api.wait_export(gateway, export_id, user.headers)
    assert info["status"] == "ready", info
    r = await gateway.get(f"/exports/{export_id}/download", headers=user.headers)
    assert r.status_code == 200
    lines = [json.loads(line) for line in r.content.decode("utf-8").splitlines() if line.strip()]
    assert lines == [i["data"] for i in items]
    r = await gateway.post(f"/generate/{job_id}/extend", json={"count": 0}, headers=user.headers)
    assert r.status_code == 422
