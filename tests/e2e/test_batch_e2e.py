"""Batch mode (issue 17 #3) end to end, through the gateway only: a batch job on the fake OpenAI-compatible server
(files + batches endpoints) survives a kill -9 of the generator while its batch waits at the provider, and ends with
exactly N items without a line submitted twice; a batch job on a provider without a Batch API is refused (422)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import register_and_login
from tests.e2e.stack import Stack, new_stack
from tests.fakes import openai_compat
from tests.fakes.common import FakeState
from tests.fakes.server import RunningFake

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]  # a stack of its own starts first

N = 40
MODEL = "gpt-4o-mini"
TEMPLATE: dict[str, Any] = {
    "name": "Batch reviews",
    "output": {"format": "json"},
    "prompts": {"system": "You write short product reviews.", "user": "Review {{ index }}."},
    "schema": {
        "type": "object",
        "properties": {"title": {"type": "string"}, "stars": {"type": "integer", "minimum": 1, "maximum": 5}},
        "required": ["title", "stars"],
        "additionalProperties": False,
    },
    "model": {"provider": "openai-compatible", "id": MODEL},
}


@pytest.fixture(scope="module")
def oc_fake() -> Iterator[RunningFake]:
    with RunningFake(openai_compat.create_app(FakeState())) as running:
        yield running


@pytest.fixture(scope="module")
def batch_stack(oc_fake: RunningFake) -> Iterator[Stack]:
    env = {
        "OPENAI_COMPATIBLE_PRICES": json.dumps({MODEL: {"prompt": 0.15, "completion": 0.6}}),
        "BATCH_POLL_INITIAL_SECONDS": "0.2",
        "BATCH_POLL_MAX_SECONDS": "1",
        "LEASE_TTL_SECONDS": "5",
    }
    stack = new_stack(openai_compatible_base_url=f"{oc_fake.base_url}/v1", extra_env=env)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


async def _ended(
    gateway: httpx.AsyncClient, headers: dict[str, str], job_id: str, wait_s: float
) -> dict[str, Any]:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        r = await gateway.get(f"/generate/{job_id}", headers=headers)
        if r.status_code == 200 and r.json()["status"] in (
            "completed",
            "completed_with_errors",
            "failed",
            "cancelled",
        ):
            return dict(r.json())
        await asyncio.sleep(0.3)
    raise AssertionError(f"job {job_id} did not end within {wait_s}s")


async def test_a_batch_job_survives_a_kill_9_of_the_generator(
    batch_stack: Stack, oc_fake: RunningFake
) -> None:
    store = oc_fake.app.state.batches
    async with httpx.AsyncClient(base_url=batch_stack.gateway, timeout=30.0) as gateway:
        user = await register_and_login(gateway, "batch")
        r = await gateway.post("/templates", json=TEMPLATE, headers=user.headers)
        assert r.status_code == 201, r.text
        template_id = r.json()["id"]

        refused = {"template_id": template_id, "count": 3, "mode": "batch"}
        refused["model"] = {"provider": "openrouter", "id": "openai/gpt-4o-mini"}
        r = await gateway.post("/generate", json=refused, headers=user.headers)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "batch_unsupported"

        oc_fake.state.configure(batch_start_delay_ms=4000)  # the batch waits at the provider
        body = {"template_id": template_id, "count": N, "mode": "batch", "dedup": False}
        r = await gateway.post("/generate", json=body, headers=user.headers)
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        for _ in range(300):
            if store.batches:
                break
            await asyncio.sleep(0.1)
        assert store.batches, "no batch was submitted"
        await asyncio.sleep(0.5)  # its id is persisted
        await asyncio.to_thread(batch_stack.restart, "generator", kill=True)  # kill -9 mid-window

        job = await _ended(gateway, user.headers, job_id, 120)

        assert job["status"] == "completed", job
        assert job["counts"]["succeeded"] == N
        seen = store.submissions()
        assert (seen["batches"], seen["resubmitted_lines"], seen["lines_submitted"]) == (1, 0, N)
        r = await gateway.get(f"/generate/{job_id}/result", params={"limit": 500}, headers=user.headers)
        assert r.status_code == 200, r.text
        assert sorted(item["index"] for item in r.json()["items"]) == list(range(N))
