"""Generation through the gateway: the real gateway, generator and templates apps (uvicorn, in-process, free
ports), the fake OpenRouter, the local Kafka and Mongo-wire server.

No catalog runs here (its URL is unreachable), so the model check is skipped as designed. Generation commands go
to a per-module topic (gateway ``generation_commands_topic`` = generator ``commands_topic``) so no other test
session's commands are consumed; events use the shared ``generation.events`` and are told apart by job id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import websockets
from joserfc.jwk import OKPKey
from tests.fakes.common import FakeState
from tests.fakes.fixtures import OPENROUTER_TEST_KEY
from tests.fakes.openrouter import create_app as create_fake_openrouter
from tests.fakes.server import RunningFake
from tests.support.serve import serve
from tests.support.tokens import Signer, signing_key, verifier_for

from llmts_common.mongo import create_client
from llmts_gateway.bootstrap import bootstrap as gateway_bootstrap
from llmts_gateway.settings import GatewaySettings
from llmts_generator.bootstrap import bootstrap as generator_bootstrap
from llmts_generator.settings import GeneratorSettings
from llmts_providers import ProviderFactory, ProviderSettings
from llmts_templates.bootstrap import bootstrap as templates_bootstrap
from llmts_templates.settings import TemplatesSettings

MONGO_URL = "mongodb://127.0.0.1:27017"
KAFKA = "127.0.0.1:9092"


async def wait_assigned(broker: Any, within: float = 30) -> None:
    """Until every subscriber of ``broker`` has partitions (a 'latest' consumer sees nothing before)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        subs = list(broker.subscribers)
        if subs and all(getattr(s, "consumer", None) is not None and s.consumer.assignment() for s in subs):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("consumers never got partitions")


@pytest.fixture(scope="module")
def key() -> OKPKey:
    return signing_key()


@pytest.fixture(scope="module")
def token(key: OKPKey) -> Callable[[str], str]:
    return Signer(key).token


class Stack:
    def __init__(self, url: str, fake: RunningFake, token: Callable[[str], str]) -> None:
        self.url = url
        self.fake = fake
        self.token = token
        self.http = httpx.AsyncClient(base_url=url, timeout=30)

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}

    async def template(self, user: str, **over: Any) -> str:
        body: dict[str, Any] = {
            "name": f"Reviews {uuid.uuid4().hex[:6]}",
            "prompts": {
                "system": "You write product reviews.",
                "user": "Review number {{ index }} of {{ product }}.",
            },
            "schema": {
                "type": "object",
                "properties": {
                    "title": {"type": "string"},
                    "stars": {"type": "integer", "minimum": 1, "maximum": 5},
                },
                "required": ["title", "stars"],
                "additionalProperties": False,
            },
            "validation": {"mode": "strict", "rules": []},
            "variables": {"product": "a kettle"},
            "model": {"provider": "openrouter", "id": "openai/gpt-4o-mini"},
        }
        body.update(over)
        r = await self.http.post("/templates", json=body, headers=self.auth(user))
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def wait_done(self, job_id: str, user: str, within: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + within
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            r = await self.http.get(f"/generate/{job_id}", headers=self.auth(user))
            assert r.status_code == 200, r.text
            body = r.json()
            if body["status"] in ("completed", "completed_with_errors", "failed", "cancelled"):
                return body
            await asyncio.sleep(0.1)
        raise TimeoutError(body)


@pytest.fixture(scope="module")
async def stack(key: OKPKey, token: Callable[[str], str]) -> AsyncIterator[Stack]:
    sid = uuid.uuid4().hex[:8]
    topic = f"test.generation.commands.gw.{sid}"
    fake = RunningFake(create_fake_openrouter(FakeState(api_key=OPENROUTER_TEST_KEY)))
    await asyncio.to_thread(fake.start)
    dbs = [f"llmts_templates_gen_{sid}", f"llmts_generator_gw_{sid}", f"llmts_gateway_gen_{sid}"]
    templates_app, _ = templates_bootstrap(
        TemplatesSettings(mongo_db=dbs[0], log_json=False, catalog_url="http://127.0.0.1:9"),
        verifier=verifier_for(key),
    )
    gen_settings = GeneratorSettings(
        mongo_db=dbs[1],
        kafka_group_id=f"llmts-generator-gw-{sid}",
        kafka_client_id=f"generator-gw-{sid}",
        commands_topic=topic,
        log_json=False,
        lease_ttl_seconds=3,
        lease_renew_seconds=0.3,
        sweep_interval_seconds=0.5,
        retry_base_seconds=0.05,
    )
    factory = ProviderFactory(
        ProviderSettings(
            openrouter_base_url=fake.base_url + "/api/v1", openrouter_api_key=OPENROUTER_TEST_KEY
        )
    )
    generator_app, gen = generator_bootstrap(
        gen_settings, provider_factory=factory, verifier=verifier_for(key), configure_process=False
    )
    async with serve(templates_app) as templates_url, serve(generator_app) as generator_url:
        gw_settings = GatewaySettings(
            templates_url=templates_url,
            generator_url=generator_url,
            catalog_url="http://127.0.0.1:9",
            mongo_db=dbs[2],
            kafka_group_id=f"gateway-gen-{sid}",
            generation_commands_topic=topic,
            max_generation_count=500,
            log_json=False,
        )
        gateway_app, _, gw_runtime = gateway_bootstrap(gw_settings, verifier=verifier_for(key))
        async with serve(gateway_app) as gateway_url:
            await wait_assigned(gw_runtime.broker)
            await wait_assigned(gen.runtime.broker)
            s = Stack(gateway_url, fake, token)
            try:
                yield s
            finally:
                await s.http.aclose()
    await asyncio.to_thread(fake.stop)
    client = create_client(MONGO_URL)
    try:
        for name in dbs:
            await client.drop_database(name)  # this module's own databases only
    finally:
        await client.close()


def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


async def test_generate_202_queued_then_completed(stack: Stack) -> None:
    alice = user()
    tpl = await stack.template(alice)
    r = await stack.http.post(
        "/generate", json={"template_id": tpl, "count": 20, "concurrency": 4}, headers=stack.auth(alice)
    )
    assert r.status_code == 202, r.text
    body = r.json()
    job_id = body["job_id"]
    assert body["status"] == "queued"
    assert body["links"] == {
        "self": f"/generate/{job_id}",
        "events": f"/generate/{job_id}/events",
        "websocket": f"/ws/generate/{job_id}",
        "result": f"/generate/{job_id}/result",
    }
    assert r.headers["location"] == f"/generate/{job_id}"
    first = await stack.http.get(f"/generate/{job_id}", headers=stack.auth(alice))
    assert first.status_code == 200  # never 404 right after the 202
    assert first.json()["status"] in ("queued", "running", "completed")
    done = await stack.wait_done(job_id, alice)
    assert done["status"] == "completed"
    assert done["counts"]["succeeded"] == 20
    assert done["usage"]["cost_usd"] > 0
    assert done["template"]["id"] == tpl
    res = await stack.http.get(f"/generate/{job_id}/result", params={"limit": 100}, headers=stack.auth(alice))
    assert res.status_code == 200
    items = res.json()["items"]
    assert [i["index"] for i in items] == list(range(20))
    assert all(set(i["data"]) == {"title", "stars"} for i in items)
    hist = await stack.http.get("/history", headers=stack.auth(alice))
    assert hist.status_code == 200
    assert hist.json()["total"] == 1
    assert hist.json()["totals"]["items"] == 20
    one = await stack.http.get(f"/history/{job_id}", headers=stack.auth(alice))
    assert one.status_code == 200
    assert one.json()["attempts"]["total"] == done["counts"]["attempts"]
    costs = one.json()["costs"]  # reported vs reconciled cost and spend per kind pass through the gateway
    assert costs["reported_cost_usd"] == pytest.approx(done["usage"]["cost_usd"])
    assert sum(k["calls"] for k in costs["by_kind"].values()) == done["counts"]["attempts"]


async def test_queued_answer_from_the_outbox(stack: Stack) -> None:
    """The accepted command exists only in the gateway's outbox: GET answers queued, never 404."""
    alice = user()
    tpl = await stack.template(alice)
    r = await stack.http.post("/generate", json={"template_id": tpl, "count": 1}, headers=stack.auth(alice))
    job_id = r.json()["job_id"]
    # the generator may already know it; either way it is never 404 for the owner, and 404 for others
    assert (await stack.http.get(f"/generate/{job_id}", headers=stack.auth(alice))).status_code == 200
    assert (await stack.http.get(f"/generate/{job_id}", headers=stack.auth(user()))).status_code == 404
    await stack.wait_done(job_id, alice)


async def test_websocket_stream(stack: Stack) -> None:
    alice = user()
    tpl = await stack.template(alice)
    stack.fake.state.configure(latency_ms=50)
    try:
        r = await stack.http.post(
            "/generate", json={"template_id": tpl, "count": 15, "concurrency": 3}, headers=stack.auth(alice)
        )
        job_id = r.json()["job_id"]
        ws_url = stack.url.replace("http://", "ws://") + f"/ws/generate/{job_id}"
        messages: list[dict[str, Any]] = []
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps({"token": stack.token(alice)}))  # token as the first message
            async for raw in ws:
                messages.append(json.loads(raw))
            assert ws.close_code == 1000
    finally:
        stack.fake.state.configure(latency_ms=0)
    assert messages[0]["type"] == "snapshot"
    assert messages[-1]["type"] in ("llmts.generation.completed", "snapshot")
    final = messages[-1]["data"]
    assert final.get("status") == "completed"
    generated = {m["data"]["index"] for m in messages if m["type"] == "llmts.generation.item_generated"}
    assert generated == set(range(15))
    assert any(m["type"] == "llmts.generation.progress" for m in messages)


async def test_sse_stream_with_query_token(stack: Stack) -> None:
    alice = user()
    tpl = await stack.template(alice)
    stack.fake.state.configure(latency_ms=50)
    try:
        r = await stack.http.post(
            "/generate", json={"template_id": tpl, "count": 10, "concurrency": 2}, headers=stack.auth(alice)
        )
        job_id = r.json()["job_id"]
        events: list[tuple[str, dict[str, Any]]] = []
        async with stack.http.stream(
            "GET", f"/generate/{job_id}/events", params={"token": stack.token(alice)}
        ) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            name = ""
            async for line in resp.aiter_lines():
                if line.startswith("event:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    events.append((name, json.loads(line.split(":", 1)[1])))
    finally:
        stack.fake.state.configure(latency_ms=0)
    assert events[0][0] == "snapshot"
    assert events[-1][0] in ("completed", "snapshot")
    assert {e["data"]["index"] for n, e in events if n == "item_generated"} == set(range(10))


async def test_streams_are_owner_only(stack: Stack) -> None:
    alice, bob = user(), user()
    tpl = await stack.template(alice)
    r = await stack.http.post("/generate", json={"template_id": tpl, "count": 1}, headers=stack.auth(alice))
    job_id = r.json()["job_id"]
    await stack.wait_done(job_id, alice)
    ws_url = stack.url.replace("http://", "ws://") + f"/ws/generate/{job_id}?token={stack.token(bob)}"
    async with websockets.connect(ws_url) as ws:
        msg = json.loads(await ws.recv())
        assert msg["type"] == "error"
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 4404
    async with websockets.connect(
        stack.url.replace("http://", "ws://") + f"/ws/generate/{job_id}?token=garbage"
    ) as ws:
        assert json.loads(await ws.recv())["type"] == "error"
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 4401
    r = await stack.http.get(f"/generate/{job_id}/events", headers=stack.auth(bob))
    assert r.status_code == 404
    for path in (f"/generate/{job_id}", f"/generate/{job_id}/result", f"/history/{job_id}"):
        assert (await stack.http.get(path, headers=stack.auth(bob))).status_code == 404, path
    assert (await stack.http.delete(f"/generate/{job_id}", headers=stack.auth(bob))).status_code == 404
    assert (await stack.http.get(f"/generate/{job_id}")).status_code == 401


async def test_batch(stack: Stack) -> None:
    alice = user()
    tpl = await stack.template(alice)
    jobs = [{"template_id": tpl, "count": n} for n in (2, 3, 4)]
    r = await stack.http.post("/generate/batch", json={"jobs": jobs}, headers=stack.auth(alice))
    assert r.status_code == 202, r.text
    ids = [j["job_id"] for j in r.json()["jobs"]]
    assert len(set(ids)) == 3
    for job_id, n in zip(ids, (2, 3, 4), strict=True):
        done = await stack.wait_done(job_id, alice)
        assert (done["status"], done["counts"]["succeeded"]) == ("completed", n)
    bad = await stack.http.post(
        "/generate/batch",
        json={"jobs": [{"template_id": tpl, "count": 1}, {"template_id": "nope", "count": 1}]},
        headers=stack.auth(alice),
    )
    assert bad.status_code == 404
    assert "job 1" in bad.json()["error"]["message"]


async def test_cancel_through_the_gateway(stack: Stack) -> None:
    alice = user()
    tpl = await stack.template(alice)
    stack.fake.state.configure(latency_ms=300)
    try:
        r = await stack.http.post(
            "/generate", json={"template_id": tpl, "count": 100, "concurrency": 2}, headers=stack.auth(alice)
        )
        job_id = r.json()["job_id"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            cur = (await stack.http.get(f"/generate/{job_id}", headers=stack.auth(alice))).json()
            if cur["counts"]["succeeded"] >= 2:
                break
            await asyncio.sleep(0.1)
        c = await stack.http.delete(f"/generate/{job_id}", headers=stack.auth(alice))
        assert c.status_code == 202, c.text
        done = await stack.wait_done(job_id, alice, within=10)
    finally:
        stack.fake.state.configure(latency_ms=0)
    assert done["status"] == "cancelled"
    assert done["counts"]["succeeded"] >= 2
    again = await stack.http.delete(f"/generate/{job_id}", headers=stack.auth(alice))
    assert again.status_code == 409


async def test_bad_requests_are_refused_up_front(stack: Stack) -> None:
    alice = user()
    tpl = await stack.template(alice)
    h = stack.auth(alice)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"template_id": tpl, "count": 0}, 422, ""),
        ({"template_id": tpl, "count": 501}, 422, "exceeds the maximum"),
        ({"template_id": tpl, "count": 1, "validation_mode": "lenient"}, 422, ""),
        ({"template_id": tpl, "count": 1, "concurrency": 0}, 422, ""),
        ({"template_id": tpl}, 422, "count is required"),
        ({"template_id": "does-not-exist", "count": 1}, 404, "not found"),
    ]
    for body, status, text in cases:
        r = await stack.http.post("/generate", json=body, headers=h)
        assert r.status_code == status, (body, r.text)
        assert text in r.json()["error"]["message"], r.text
    bob_tpl = await stack.template(user())
    r = await stack.http.post("/generate", json={"template_id": bob_tpl, "count": 1}, headers=h)
    assert r.status_code == 404  # another user's private template
    assert (await stack.http.post("/generate", json={"template_id": tpl, "count": 1})).status_code == 401


async def test_tasks_define_the_count(stack: Stack) -> None:
    alice = user()
    tpl = await stack.template(alice)
    tasks = [{"product": "a lamp", "count": 2}, {"product": "a chair"}]
    r = await stack.http.post(
        "/generate", json={"template_id": tpl, "tasks": tasks}, headers=stack.auth(alice)
    )
    assert r.status_code == 202, r.text
    done = await stack.wait_done(r.json()["job_id"], alice)
    assert done["requested"] == 3
    assert done["counts"]["succeeded"] == 3


async def test_dry_run_and_preview(stack: Stack) -> None:
    alice = user()
    tpl = await stack.template(alice)
    for path, body in (
        ("/generate", {"template_id": tpl, "count": 50, "dry_run": True}),
        ("/generate/preview", {"template_id": tpl, "count": 50}),
    ):
        r = await stack.http.post(path, json=body, headers=stack.auth(alice))
        assert r.status_code == 200, r.text
        out = r.json()
        assert len(out["items"]) == 3
        first = out["items"][0]
        assert first["user"] == "Review number 0 of a kettle."
        assert first["request_body"]["model"] == "openai/gpt-4o-mini"
        assert first["request_body"]["response_format"]["type"] == "json_schema"
        assert first["request_body"]["messages"][1]["content"] == first["user"]
        assert out["estimate"]["low"]["calls"] == 50
        assert out["estimate"]["high"]["calls"] == 150
    hist = await stack.http.get("/history", headers=stack.auth(alice))
    assert hist.json()["total"] == 0  # no job was created


async def test_both_previews_show_the_same_provider_body(stack: Stack) -> None:
    """One preview implementation: /templates/preview and /generate/preview give the body the provider receives
    (``strict`` only when the schema allows it: this one lacks additionalProperties: false)."""
    alice = user()
    open_schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}},
        "required": ["title"],
    }
    for schema, strict in ((None, True), (open_schema, False)):
        tpl = await stack.template(alice, **({"schema": schema} if schema else {}))
        from_templates = await stack.http.post(
            "/templates/preview",
            json={"template_id": tpl, "model": "openai/gpt-4o-mini"},
            headers=stack.auth(alice),
        )
        from_generate = await stack.http.post(
            "/generate/preview",
            json={"template_id": tpl, "count": 1, "model": "openai/gpt-4o-mini"},  # a model id string in both
            headers=stack.auth(alice),
        )
        assert from_templates.status_code == 200, from_templates.text
        assert from_generate.status_code == 200, from_generate.text
        body = from_generate.json()["items"][0]["request_body"]
        assert from_templates.json()["request_body"] == body
        assert body["response_format"]["json_schema"]["strict"] is strict


async def test_sample_estimate_runs_a_real_sample_and_extrapolates(stack: Stack) -> None:
    """``estimate: "sample"``: the job's first k items run as a real job of the caller (in their history and
    usage), and its cost per valid item — the repair included — is extrapolated to N."""
    alice = user()
    tpl = await stack.template(alice)
    stack.fake.state.configure(script=["invalid_json"])  # one repair in the sample
    try:
        r = await stack.http.post(
            "/generate/preview",
            json={"template_id": tpl, "count": 40, "estimate": "sample", "estimate_sample_size": 4},
            headers=stack.auth(alice),
        )
    finally:
        stack.fake.state.configure(script=[])
    assert r.status_code == 200, r.text
    out = r.json()
    estimate = out["estimate"]
    assert estimate["method"] == "sample"
    sample = estimate["sample"]
    assert (sample["size"], sample["valid"], sample["status"]) == (4, 4, "completed")
    assert sample["calls"] == 5  # 4 first tries + 1 repair
    assert estimate["calls_per_item"] == 1.25
    job = await stack.wait_done(sample["job_id"], alice)  # a job of the caller, charged like any
    assert job["usage"]["cost_usd"] == pytest.approx(sample["cost_usd"])
    assert sample["cost_usd"] > 0
    expected = sample["cost_usd"] / 4 * 40
    assert estimate["total"]["expected"] == pytest.approx(expected)
    assert estimate["total"]["low"] <= expected <= estimate["total"]["high"]
    assert estimate["tokens_estimate"]["method"] == "chars/4"  # the token guess is kept beside it
    assert len(out["items"]) == 3  # the rendered preview as usual
    hist = await stack.http.get("/history", headers=stack.auth(alice))
    assert [j["job_id"] for j in hist.json()["items"]] == [sample["job_id"]]


async def test_sample_estimate_bad_input_is_refused(stack: Stack) -> None:
    alice = user()
    tpl = await stack.template(alice)
    for body in (
        {"template_id": tpl, "count": 10, "estimate": "guess"},
        {"template_id": tpl, "count": 10, "estimate_sample_size": 3},  # a size without estimate: sample
        {"template_id": tpl, "count": 10, "estimate": "sample", "estimate_sample_size": 0},
        {"template_id": tpl, "count": 10, "estimate": "sample", "estimate_sample_size": 51},
        {"template_id": tpl, "count": 10, "estimate": "sample", "mode": "batch"},
    ):
        r = await stack.http.post("/generate/preview", json=body, headers=stack.auth(alice))
        assert r.status_code == 422, (body, r.text)
        assert set(r.json()["error"]) >= {"code", "message", "details"}
    r = await stack.http.post(
        "/generate/preview",
        json={"template_id": "nope", "count": 10, "estimate": "sample"},
        headers=stack.auth(alice),
    )
    assert r.status_code == 404
    hist = await stack.http.get("/history", headers=stack.auth(alice))
    assert hist.json()["total"] == 0  # no sample was run
