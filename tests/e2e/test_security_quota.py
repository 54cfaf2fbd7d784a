"""Security suite, quotas and budgets (issue 14, findings 2 and 7): through the gateway of a stack running the
DEFAULT per-user quotas (the shared stack raises them for the other suites, so this module starts its own).

A stranger who registers cannot commit more than the default budget, batch abuse is refused before anything is
accepted, a finished job's reservation is settled to its (much smaller) billed cost, a command too large for a
Kafka message is refused with 413 at admission, and cancelling a job charges every call the provider served.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from llmts_gateway.settings import GatewaySettings
from tests.e2e import api
from tests.e2e.conftest import User, register_and_login
from tests.e2e.stack import Stack, new_stack

pytestmark = pytest.mark.e2e

DEFAULTS = GatewaySettings.model_fields
DEFAULT_BUDGET = float(DEFAULTS["quota_budget_usd"].default)
DEFAULT_ACTIVE_JOBS = int(DEFAULTS["quota_max_active_jobs"].default)
DEFAULT_ITEMS_PER_JOB = int(DEFAULTS["quota_max_items_per_job"].default)
PRICED_MODEL = {"id": "openai/gpt-4o-mini", "max_tokens": 100_000}


@pytest.fixture(scope="module")
def quota_stack() -> Iterator[Stack]:
    env = {
        "QUOTA_MAX_ITEMS_PER_JOB": str(DEFAULTS["quota_max_items_per_job"].default),
        "QUOTA_MAX_ACTIVE_JOBS": str(DEFAULTS["quota_max_active_jobs"].default),
        "QUOTA_MAX_ITEMS_PER_DAY": str(DEFAULTS["quota_max_items_per_day"].default),
        "QUOTA_BUDGET_USD": str(DEFAULTS["quota_budget_usd"].default),
    }
    s = new_stack(extra_env=env, openrouter_latency_ms=3000)  # jobs stay running while the test admits more
    try:
        s.start()
        yield s
    finally:
        s.stop()


@pytest.fixture
async def client(quota_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=quota_stack.gateway, timeout=60.0) as c:
        yield c


async def stranger_with_template(client: httpx.AsyncClient, name: str) -> tuple[User, str]:
    user = await register_and_login(client, name)
    r = await client.post("/templates/examples/quiz/import", headers=user.headers)
    assert r.status_code == 201, r.text
    return user, r.json()["template"]["id"]


async def generate(client: httpx.AsyncClient, user: User, body: dict[str, Any]) -> httpx.Response:
    for _ in range(60):  # the catalog's first sync may still be under way right after start
        r = await client.post("/generate", headers=user.headers, json=body)
        if r.status_code != 422 or r.json()["error"]["code"] != "unknown_model":
            return r
        await asyncio.sleep(1)
    return r


async def usage(client: httpx.AsyncClient, user: User) -> dict[str, Any]:
    r = await client.get("/me/usage", headers=user.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_a_stranger_cannot_commit_more_than_the_default_budget(client: httpx.AsyncClient) -> None:
    user, template_id = await stranger_with_template(client, "stranger")
    start = await usage(client, user)
    assert start["limits"]["budget_usd"] == DEFAULT_BUDGET
    assert start["budget"]["used"] == 0
    huge = {"template_id": template_id, "count": DEFAULT_ITEMS_PER_JOB, "model": PRICED_MODEL}
    r = await generate(client, user, huge)
    assert r.status_code == 402, r.text
    error = r.json()["error"]
    assert error["code"] == "budget_exceeded"
    assert error["details"]["limit"] == "budget_usd"
    assert error["details"]["remaining"] == DEFAULT_BUDGET
    assert error["details"]["requested"] > DEFAULT_BUDGET
    assert error["details"]["period_resets_at"]
    # jobs whose estimate (200 items × 3 calls × 100k tokens) is capped at 40% of the budget: two fit, not three
    slice_usd = round(DEFAULT_BUDGET * 0.4, 6)
    capped = {"template_id": template_id, "count": 200, "model": PRICED_MODEL, "max_cost_usd": slice_usd}
    accepted = []
    for _ in range(2):
        r = await generate(client, user, capped)
        assert r.status_code == 202, r.text
        accepted.append(r.json()["job_id"])
    r = await generate(client, user, capped)
    assert r.status_code == 402, r.text
    assert r.json()["error"]["details"]["remaining"] == pytest.approx(DEFAULT_BUDGET - 2 * slice_usd)
    held = await usage(client, user)
    assert held["budget"]["used"] <= DEFAULT_BUDGET
    assert sorted(j["job_id"] for j in held["open_jobs"]) == sorted(accepted)
    # cancelled, the jobs end and their reservations settle to their billed cost (through generation.events)
    for job_id in accepted:
        r = await client.delete(f"/generate/{job_id}", headers=user.headers)
        assert r.status_code in (202, 409), r.text
    for job_id in accepted:
        await api.wait_job(client, job_id, user.headers, within=120)
    deadline = time.monotonic() + 60
    current = await usage(client, user)
    while current["open_jobs"] and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        current = await usage(client, user)
    assert current["open_jobs"] == []
    assert current["budget"]["reserved_usd"] == 0
    assert 0 <= current["budget"]["spent_usd"] < slice_usd  # what was billed before the cancel
    assert current["active_jobs"]["used"] == 0


async def test_batch_abuse_is_refused_before_anything_is_accepted(client: httpx.AsyncClient) -> None:
    user, template_id = await stranger_with_template(client, "batcher")
    abuse = {"jobs": [{"template_id": template_id, "count": 10_000} for _ in range(100)]}
    r = await client.post("/generate/batch", headers=user.headers, json=abuse)
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "quota_exceeded"
    assert r.json()["error"]["details"]["limit"] == "items_per_job"
    small = {"template_id": template_id, "count": 1, "max_cost_usd": 0.01}
    r = await client.post(
        "/generate/batch", headers=user.headers, json={"jobs": [small] * (DEFAULT_ACTIVE_JOBS + 1)}
    )
    assert r.status_code == 429, r.text
    details = r.json()["error"]["details"]
    assert (details["limit"], details["used"], details["requested"]) == (
        "active_jobs",
        0,
        DEFAULT_ACTIVE_JOBS + 1,
    )
    after = await usage(client, user)
    assert (after["active_jobs"]["used"], after["items_today"]["used"], after["open_jobs"]) == (0, 0, [])
    r = await client.get("/history", headers=user.headers)
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 0


async def test_a_command_over_the_kafka_message_limit_is_413(client: httpx.AsyncClient) -> None:
    user, template_id = await stranger_with_template(client, "bigcommand")
    settings = GatewaySettings()
    limit = settings.kafka_max_message_bytes - settings.command_size_margin_bytes
    tasks = [{"topic": "x" * 1_100, "count": 1} for _ in range(900)]  # ~1 MB of tasks, under the body limit
    body = {"template_id": template_id, "tasks": tasks, "max_cost_usd": 0.01}
    r = await client.post("/generate", headers=user.headers, json=body)
    assert r.status_code == 413, r.text
    error = r.json()["error"]
    assert (error["code"], error["details"]["limit"]) == ("command_too_large", limit)
    assert error["details"]["size"] > limit
    assert (await usage(client, user))["open_jobs"] == []


async def test_admin_quota_routes_need_the_admin_role(client: httpx.AsyncClient) -> None:
    user = await register_and_login(client, "notadmin")
    for method in ("GET", "PUT", "DELETE"):
        r = await client.request(
            method, f"/admin/users/{user.user_id}/quota", headers=user.headers, json={"budget_usd": 1e6}
        )
        assert r.status_code == 403, r.text
    assert (await usage(client, user))["limits"]["budget_usd"] == DEFAULT_BUDGET


async def test_a_cancel_charges_every_call_the_provider_served(
    client: httpx.AsyncClient, quota_stack: Stack
) -> None:
    """Start a job and cancel it while its calls are at the provider (3 s each here): those calls are billed by the
    provider, so the user is charged for them — before, they were abandoned unrecorded, and start-then-cancel spent
    the operator's money without touching the user's budget. What the fake OpenRouter billed equals what the user
    spent."""
    user, template_id = await stranger_with_template(client, "canceller")
    fake = quota_stack.fake_openrouter
    for _ in range(240):  # the earlier tests' jobs have ended; their last calls too
        if (await api.fake_stats(fake))["in_flight"] == 0:
            break
        await asyncio.sleep(0.25)
    before = await api.fake_stats(fake)
    assert before["in_flight"] == 0
    body = {
        "template_id": template_id,
        "count": 20,
        "concurrency": 4,
        "model": {"id": PRICED_MODEL["id"], "max_tokens": 400},  # priced, and fits the model's context
    }
    r = await generate(client, user, body)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    for _ in range(240):
        if (await api.fake_stats(fake))["in_flight"] >= 1:
            break
        await asyncio.sleep(0.1)
    r = await client.delete(f"/generate/{job_id}", headers=user.headers)
    assert r.status_code == 202, r.text
    job = await api.wait_job(client, job_id, user.headers, within=120)
    assert job["status"] == "cancelled"
    current = await usage(client, user)
    for _ in range(120):  # the reservation settles through generation.events
        if not current["open_jobs"]:
            break
        await asyncio.sleep(0.5)
        current = await usage(client, user)
    after = await api.fake_stats(fake)
    served = float(after["cost_usd"]) - float(before["cost_usd"])
    assert after["in_flight"] == 0
    assert after["calls"] > before["calls"]
    assert served > 0
    assert current["budget"]["reserved_usd"] == 0
    assert current["budget"]["spent_usd"] == pytest.approx(served, abs=2e-6)
