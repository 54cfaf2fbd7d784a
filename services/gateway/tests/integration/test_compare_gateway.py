"""Model comparison through the real gateway (issue 18 #6): its own Mongo database on the local server, its
commands through the outbox to a per-module topic of the local Kafka; the templates and generator services faked
at the HTTP boundary (FastAPI apps on free ports: the template document, and the generator's ``/history/{id}``,
``/generate/{id}`` and ``/generate/{id}/result`` answers set by the test). No catalog (unreachable): the model
check is skipped as designed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from joserfc.jwk import OKPKey
from pymongo import AsyncMongoClient
from tests.support.serve import serve
from tests.support.tokens import Signer, signing_key, verifier_for

from llmts_common.contracts import UserDeleted
from llmts_gateway.adapters.accounts import RevokedUsers
from llmts_gateway.bootstrap import bootstrap as gateway_bootstrap
from llmts_gateway.entrypoints.account_events import on_user_deleted
from llmts_gateway.settings import GatewaySettings

pytestmark = pytest.mark.connected

TEMPLATE = {
    "id": "tpl_cmp",
    "owner_id": "alice",
    "version": 1,
    "created_at": "2026-12-01T10:00:00+00:00",
    "updated_at": "2026-12-01T10:00:00+00:00",
    "name": "Reviews",
    "description": "",
    "category": None,
    "tags": [],
    "visibility": "private",
    "output": {"format": "json"},
    "prompts": {"system": "You write reviews.", "user": "Review {{ index }} of {{ product }}."},
    "schema": {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]},
    "validation": {"mode": "strict", "rules": []},
    "variables": {"product": "a kettle"},
    "tasks": [],
    "model": {"provider": "openrouter", "id": "openai/gpt-4o-mini"},
    "metadata": {},
}


class FakeGenerator:
    """What the generator answers per job id (404 for a job it has not seen: the gateway reads the outbox)."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.items: dict[str, list[dict[str, Any]]] = {}
        self.app = FastAPI()

        @self.app.get("/templates/{template_id}")
        async def template(template_id: str) -> JSONResponse:
            if template_id != TEMPLATE["id"]:
                return JSONResponse({"error": {"code": "template_not_found", "message": "nope"}}, 404)
            return JSONResponse(TEMPLATE)

        @self.app.get("/history/{job_id}")
        async def history(job_id: str) -> JSONResponse:
            if job_id not in self.jobs:
                return JSONResponse({"error": {"code": "job_not_found", "message": "nope"}}, 404)
            return JSONResponse(self.jobs[job_id])

        @self.app.get("/generate/{job_id}")
        async def status(job_id: str) -> JSONResponse:
            if job_id not in self.jobs:
                return JSONResponse({"error": {"code": "job_not_found", "message": "nope"}}, 404)
            return JSONResponse({k: v for k, v in self.jobs[job_id].items() if k != "attempts"})

        @self.app.get("/generate/{job_id}/result")
        async def result(job_id: str) -> JSONResponse:
            items = self.items.get(job_id, [])
            return JSONResponse({"items": items, "total": len(items), "limit": 50, "offset": 0})

    def put(self, job_id: str, status: str, attempts: list[dict[str, Any]], cost: float) -> None:
        valid = [a for a in attempts if a["outcome"] == "valid"]
        self.jobs[job_id] = {
            "job_id": job_id,
            "status": status,
            "requested": 3,
            "counts": {"succeeded": len(valid), "rejected": 0, "attempts": len(attempts)},
            "usage": {
                "prompt_tokens": 30 * len(attempts),
                "completion_tokens": 10 * len(attempts),
                "cost_usd": cost,
            },
            "attempts": {"total": len(attempts), "by_outcome": {}, "items": attempts},
        }
        self.items[job_id] = [
            {"index": i, "data": {"title": f"t{i}"}, "attempts": 1, "judge": {"scores": {"q": 4 + i % 2}}}
            for i in range(len(valid))
        ]


def attempts(outcomes: list[list[str]], latency: float) -> list[dict[str, Any]]:
    out = []
    for slot, tries in enumerate(outcomes):
        for n, outcome in enumerate(tries, start=1):
            out.append(
                {
                    "slot": slot,
                    "target": slot,
                    "item_attempt": n,
                    "outcome": outcome,
                    "latency_ms": latency + slot,
                }
            )
    return out


@pytest.fixture(scope="module")
def key() -> OKPKey:
    return signing_key()


@pytest.fixture(scope="module")
def auth(key: OKPKey) -> Callable[[str], dict[str, str]]:
    return Signer(key).headers


@pytest.fixture(scope="module")
def fake() -> FakeGenerator:
    return FakeGenerator()


@pytest.fixture(scope="module")
async def gateway(key: OKPKey, fake: FakeGenerator) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    async with serve(fake.app) as url:
        settings = GatewaySettings(
            templates_url=url,
            generator_url=url,
            catalog_url="http://127.0.0.1:9",
            mongo_db=f"llmts_gateway_cmp_{uuid.uuid4().hex[:10]}",
            kafka_group_id=f"gateway-cmp-{uuid.uuid4().hex[:8]}",
            generation_commands_topic=f"llmts-test-cmp-{uuid.uuid4().hex[:8]}",
            quota_max_items_per_day=40,
            log_json=False,
        )
        gw, _, runtime = gateway_bootstrap(settings, verifier=verifier_for(key))
        async with gw.router.lifespan_context(gw):
            transport = httpx.ASGITransport(app=gw)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://gateway", timeout=30
            ) as client:
                yield client, runtime.db
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url.get_secret_value())
        try:
            await mongo.drop_database(settings.database_name)
        finally:
            await mongo.close()


BODY = {
    "template_id": "tpl_cmp",
    "models": ["m/alpha", {"provider": "openrouter", "id": "m/beta"}],
    "sample": 3,
}


async def test_compare_runs_one_job_per_model_and_reports_side_by_side(
    gateway: tuple[httpx.AsyncClient, Any], fake: FakeGenerator, auth: Callable[[str], dict[str, str]]
) -> None:
    client, db = gateway
    alice = auth(f"alice-{uuid.uuid4().hex[:6]}")
    r = await client.post(
        "/generate/compare", json={**BODY, "variables": {"product": "a lamp"}}, headers=alice
    )
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert r.headers["location"] == f"/generate/compare/{accepted['comparison_id']}"
    a, b = (job["job_id"] for job in accepted["jobs"])
    commands = {d["_id"]: d["envelope"]["data"] async for d in db["outbox"].find({"_id": {"$in": [a, b]}})}
    assert {c["model"]["id"] for c in commands.values()} == {"m/alpha", "m/beta"}
    assert {c["seed"] for c in commands.values()} == {accepted["seed"]}  # the same items' variables
    assert {c["count"] for c in commands.values()} == {3}
    assert {c["cache"] for c in commands.values()} == {"off"}
    stored = await db["comparisons"].find_one({"_id": accepted["comparison_id"]})
    assert stored is not None
    assert [m["job_id"] for m in stored["models"]] == [a, b]

    url = f"/generate/compare/{accepted['comparison_id']}"
    report = (await client.get(url, headers=alice)).json()
    assert report["status"] == "running"
    assert report["winner"] is None
    assert report["start"] is None
    assert [m["status"] for m in report["models"]] == ["queued", "queued"]  # the outbox's view

    fake.put(a, "completed", attempts([["valid"], ["invalid", "valid"], ["valid"]], 100.0), cost=0.006)
    fake.put(b, "running", attempts([["valid"]], 300.0), cost=0.001)
    report = (await client.get(url, headers=alice, params={"items": 1})).json()
    assert report["status"] == "running"
    assert report["winner"] is None
    alpha = report["models"][0]
    assert alpha["first_try_validity"] == round(2 / 3, 4)
    assert alpha["repairs_per_item"] == round(1 / 3, 4)
    assert alpha["cost_per_valid_item_usd"] == 0.002
    assert alpha["latency_ms"] == {"p50": 101.0, "p95": 102.0, "calls": 4}
    assert alpha["judge_score"] == round((4 + 5 + 4) / 3, 4)
    assert len(alpha["items"]) == 1
    assert alpha["items_total"] == 3

    fake.put(b, "completed", attempts([["valid"], ["valid"], ["valid"]], 300.0), cost=0.003)
    report = (await client.get(url, headers=alice)).json()
    assert report["status"] == "completed"
    assert report["created_at"].endswith("Z")
    assert report["winner"]["job_id"] == b  # first-try validity 1.0 beats 0.67
    assert report["start"] == {
        "template_id": "tpl_cmp",
        "model": {"provider": "openrouter", "id": "m/beta"},
        "variables": {"product": "a lamp"},
        "max_attempts_per_item": 3,
        "dedup": True,
    }
    assert (await client.delete(url, headers=alice)).json()["error"]["code"] == "comparison_finished"

    bob = auth(f"bob-{uuid.uuid4().hex[:6]}")
    for method in ("GET", "DELETE"):
        other = await client.request(method, url, headers=bob)
        assert other.status_code == 404
        assert other.json()["error"]["code"] == "comparison_not_found"


async def test_delete_cancels_the_running_jobs(
    gateway: tuple[httpx.AsyncClient, Any], fake: FakeGenerator, auth: Callable[[str], dict[str, str]]
) -> None:
    client, db = gateway
    carol = auth(f"carol-{uuid.uuid4().hex[:6]}")
    accepted = (await client.post("/generate/compare", json=BODY, headers=carol)).json()
    a, b = (job["job_id"] for job in accepted["jobs"])
    fake.put(a, "completed", attempts([["valid"]], 10.0), cost=0.0)
    fake.put(b, "running", [], cost=0.0)
    r = await client.delete(f"/generate/compare/{accepted['comparison_id']}", headers=carol)
    assert r.status_code == 202, r.text
    assert r.json()["cancelled"] == [b]
    cancels = [d async for d in db["outbox"].find({"envelope.type": {"$regex": "cancel"}})]
    assert [d["envelope"]["data"]["job_id"] for d in cancels] == [b]


@pytest.mark.parametrize(
    ("body", "params"),
    [
        ({**BODY, "models": ["m/alpha"]}, {}),
        ({**BODY, "models": ["m/alpha", "m/alpha"]}, {}),
        ({**BODY, "models": ["a", "b", "c", "d", "e", "f"]}, {}),
        ({**BODY, "sample": 0}, {}),
        ({**BODY, "sample": 51}, {}),
        ({**BODY, "colour": "red"}, {}),
        (BODY, {"verbose": "1"}),
    ],
)
async def test_invalid_requests_are_422(
    gateway: tuple[httpx.AsyncClient, Any],
    auth: Callable[[str], dict[str, str]],
    body: dict[str, Any],
    params: dict[str, str],
) -> None:
    client, _ = gateway
    r = await client.post("/generate/compare", json=body, params=params, headers=auth("dave"))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"


async def test_report_query_and_unknown_ids(
    gateway: tuple[httpx.AsyncClient, Any], auth: Callable[[str], dict[str, str]]
) -> None:
    client, _ = gateway
    erin = auth("erin")
    assert (await client.get("/generate/compare/cmp_nope", headers=erin)).status_code == 404
    assert (
        await client.get("/generate/compare/cmp_nope", params={"items": 51}, headers=erin)
    ).status_code == 422
    assert (await client.get("/generate/compare/cmp_nope", params={"x": 1}, headers=erin)).status_code == 422
    r = await client.post("/generate/compare", json={**BODY, "template_id": "tpl_other"}, headers=erin)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "template_not_found"


async def test_the_sum_of_the_samples_counts_against_the_quota(
    gateway: tuple[httpx.AsyncClient, Any], auth: Callable[[str], dict[str, str]]
) -> None:
    client, db = gateway
    user = f"frank-{uuid.uuid4().hex[:6]}"
    r = await client.post(
        "/generate/compare", json={**BODY, "sample": 21}, headers=auth(user)
    )  # 42 > 40 a day
    assert r.status_code == 429, r.text
    assert r.json()["error"]["details"]["requested"] == 42
    assert await db["comparisons"].count_documents({"owner_id": user}) == 0
    ok = await client.post("/generate/compare", json={**BODY, "sample": 20}, headers=auth(user))
    assert ok.status_code == 202, ok.text


async def test_a_deleted_users_comparisons_are_erased(
    gateway: tuple[httpx.AsyncClient, Any], auth: Callable[[str], dict[str, str]]
) -> None:
    client, db = gateway
    gone, kept = f"gina-{uuid.uuid4().hex[:6]}", f"hank-{uuid.uuid4().hex[:6]}"
    for user in (gone, kept):
        assert (await client.post("/generate/compare", json=BODY, headers=auth(user))).status_code == 202
    revoked = RevokedUsers(db["revoked_users"], retention=timedelta(days=1))
    event = UserDeleted(user_id=gone, deleted_at=datetime.now(UTC), by="self")
    for _ in range(2):  # idempotent
        await on_user_deleted(event, revoked=revoked, outbox=db["outbox"], comparisons=db["comparisons"])
    assert await db["comparisons"].count_documents({"owner_id": gone}) == 0
    assert await db["comparisons"].count_documents({"owner_id": kept}) == 1
