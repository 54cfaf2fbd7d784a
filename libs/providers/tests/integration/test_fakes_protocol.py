"""The fakes' raw wire format and control endpoints (plain httpx, no library code)."""

from __future__ import annotations

import json

import httpx
from tests.fakes import openrouter
from tests.fakes.common import FakeState
from tests.fakes.fixtures import OPENROUTER_TEST_KEY, FakeHandle
from tests.fakes.server import RunningFake, start_fake, start_fake_async

AUTH = {"Authorization": f"Bearer {OPENROUTER_TEST_KEY}"}
BODY = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def _events(text: str) -> list[str]:
    return [block for block in text.split("\n\n") if block]


async def test_sse_wire_format(fake_openrouter: FakeHandle) -> None:
    fake_openrouter.configure(usage_chunk_shape="empty_choices")
    async with httpx.AsyncClient() as client:
        resp = await client.post(fake_openrouter.base_url + "/chat/completions", json=BODY, headers=AUTH)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert resp.headers["x-generation-id"].startswith("gen-")
    events = _events(resp.text)
    assert events[0] == ": OPENROUTER PROCESSING"
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events if e.startswith("data: {")]
    assert all(c["object"] == "chat.completion.chunk" and c["provider"] == "OpenAI" for c in chunks)
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finish) == 1
    assert finish[0]["choices"][0]["finish_reason"] == "stop"
    usage = chunks[-1]
    assert usage["choices"] == []
    assert usage["usage"]["cost"] > 0
    assert "usage" not in finish[0]


async def test_midstream_error_wire_format(fake_openrouter: FakeHandle) -> None:
    fake_openrouter.configure(script=["midstream_error"])
    async with httpx.AsyncClient() as client:
        resp = await client.post(fake_openrouter.base_url + "/chat/completions", json=BODY, headers=AUTH)
    assert resp.status_code == 200
    last = json.loads(_events(resp.text)[-1].removeprefix("data: "))
    assert last["error"]["code"] == 502
    assert last["choices"][0]["finish_reason"] == "error"


async def test_429_wire_format(fake_openrouter: FakeHandle) -> None:
    fake_openrouter.configure(rate_429=1.0, retry_after_s=3)
    async with httpx.AsyncClient() as client:
        resp = await client.post(fake_openrouter.base_url + "/chat/completions", json=BODY, headers=AUTH)
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "3"
    assert int(resp.headers["x-ratelimit-reset"]) > 1e12
    err = resp.json()["error"]
    assert err["code"] == 429
    assert err["metadata"]["headers"]["X-RateLimit-Remaining"] == "0"


async def test_ollama_ndjson_wire_format(fake_ollama: FakeHandle) -> None:
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}  # stream defaults to true
    async with httpx.AsyncClient() as client:
        resp = await client.post(fake_ollama.base_url + "/api/chat", json=body)
        bad = await client.post(
            fake_ollama.base_url + "/api/chat", json={**body, "format": "yaml", "stream": False}
        )
        missing = await client.post(fake_ollama.base_url + "/api/show", json={"model": "ghost"})
        root = await client.get(fake_ollama.base_url + "/")
    assert resp.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in resp.text.splitlines()]
    assert all(not line["done"] for line in lines[:-1])
    assert lines[-1]["done"] is True
    assert lines[-1]["done_reason"] == "stop"
    assert lines[-1]["eval_count"] > 0
    assert bad.status_code == 500
    assert "invalid format" in bad.json()["error"]
    assert missing.status_code == 404
    assert missing.json() == {"error": "model 'ghost' not found"}
    assert root.text == "Ollama is running"


async def test_control_endpoints(fake_openrouter: FakeHandle) -> None:
    root = fake_openrouter.root_url
    async with httpx.AsyncClient() as client:
        cfg = await client.post(
            root + "/_fake/config", json={"latency_ms": 5, "script": ["429", {"kind": "ok"}]}
        )
        assert cfg.status_code == 200
        assert cfg.json()["latency_ms"] == 5
        bad = await client.post(root + "/_fake/config", json={"latency": 5})
        assert bad.status_code == 400
        r1 = await client.post(
            fake_openrouter.base_url + "/chat/completions", json={**BODY, "stream": False}, headers=AUTH
        )
        r2 = await client.post(
            fake_openrouter.base_url + "/chat/completions", json={**BODY, "stream": False}, headers=AUTH
        )
        assert (r1.status_code, r2.status_code) == (429, 200)
        stats = (await client.get(root + "/_fake/stats")).json()
        assert stats["calls"] == 2
        assert stats["by_outcome"] == {"429": 1, "ok": 1}
        assert stats["completion_tokens"] > 0
        assert stats["last_requests"][-1]["body"]["model"] == "openai/gpt-4o-mini"
        assert (await client.post(root + "/_fake/reset")).json() == {"ok": True}
        stats = (await client.get(root + "/_fake/stats")).json()
        assert stats["calls"] == 0
        assert stats["config"]["latency_ms"] == 0


def test_fail_first_n_and_rates_are_deterministic() -> None:
    state = FakeState(fail_first_n=2, rate_5xx=0.5, seed=9)
    kinds = [state.next_outcome().get("status", 200) for _ in range(12)]
    state.reset()
    again = [state.next_outcome().get("status", 200) for _ in range(12)]
    assert kinds == again
    assert kinds[:2] == [503, 503]
    assert 503 in kinds[2:]
    assert 200 in kinds[2:]


def test_sync_start_fake_and_restart() -> None:
    state = FakeState()
    with start_fake(openrouter.create_app(state)) as base_url:
        assert httpx.get(base_url + "/api/v1/models").status_code == 200
    fake = RunningFake(openrouter.create_app(state)).start()
    port = fake.port
    fake.stop()
    try:
        httpx.get(fake.base_url + "/api/v1/models/count")
        raise AssertionError("expected connection refused")
    except httpx.ConnectError:
        pass
    fake.start()
    try:
        assert fake.port == port
        assert httpx.get(fake.base_url + "/api/v1/models/count").json()["data"]["count"] >= 300
    finally:
        fake.stop()


async def test_async_start_fake() -> None:
    async with start_fake_async(openrouter.create_app(FakeState(latency_ms=1))) as fake:
        async with httpx.AsyncClient() as client:
            resp = await client.get(fake.base_url + "/api/v1/key", headers=AUTH)
        assert resp.json()["data"]["is_free_tier"] is True
