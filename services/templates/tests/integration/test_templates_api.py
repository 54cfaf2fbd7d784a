"""The templates service over HTTP against the real Mongo-wire server and Kafka."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from llmts_common.contracts.topics import TEMPLATE_EVENTS
from llmts_common.kafka_security import kafka_client_options


def quiz(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"Quiz {uuid.uuid4().hex[:6]}",
        "description": "Quiz questions",
        "category": "education",
        "tags": ["quiz"],
        "visibility": "private",
        "output": {"format": "json"},
        "prompts": {"system": "You write quizzes.", "user": "Question {{ index }} about {{ topic }}"},
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
            "required": ["question", "answer"],
        },
        "validation": {"mode": "custom", "rules": [{"path": "question", "min_length": 10}]},
        "variables": {"topic": "history"},
        "tasks": [{"count": 2, "topic": "physics"}],
        "model": {
            "provider": "openrouter",
            "id": "openai/gpt-4o-mini",
            "temperature": 0.7,
            "max_tokens": 500,
        },
    }
    body.update(over)
    return body


async def create(client: httpx.AsyncClient, headers: dict[str, str], **over: Any) -> dict[str, Any]:
    r = await client.post("/templates", json=quiz(**over), headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def test_requires_a_valid_token(client: httpx.AsyncClient) -> None:
    r = await client.get("/templates")
    assert r.status_code == 401
    r = await client.get("/templates", headers={"Authorization": "Bearer not.a.token"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_token"


async def test_crud_roundtrip(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    created = await create(client, alice)
    assert created["version"] == 1
    assert created["owner_id"]
    assert created["id"]
    assert created["schema"]["$schema"].startswith("https://json-schema.org")
    got = (await client.get(f"/templates/{created['id']}", headers=alice)).json()
    assert got == created
    r = await client.put(f"/templates/{created['id']}", json=quiz(name="Renamed"), headers=alice)
    assert r.status_code == 200
    assert r.json()["version"] == 2
    assert r.json()["name"] == "Renamed"
    r = await client.delete(f"/templates/{created['id']}", headers=alice)
    assert r.status_code == 204
    assert (await client.get(f"/templates/{created['id']}", headers=alice)).status_code == 404
    assert (await client.delete(f"/templates/{created['id']}", headers=alice)).status_code == 404


async def test_unknown_keys_and_missing_schema_are_422(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    r = await client.post("/templates", json=quiz(promts={}), headers=alice)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error"
    body = quiz()
    del body["schema"]
    r = await client.post("/templates", json=body, headers=alice)
    assert r.status_code == 422


async def test_ownership_private_public_idor(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    private = await create(client, alice)
    public = await create(client, alice, visibility="public")
    pid, pub = private["id"], public["id"]
    for method, path in [
        ("GET", f"/templates/{pid}"),
        ("PUT", f"/templates/{pid}"),
        ("DELETE", f"/templates/{pid}"),
        ("GET", f"/templates/{pid}/versions"),
        ("GET", f"/templates/{pid}/versions/1"),
        ("GET", f"/templates/{pid}/diff?from=1"),
        ("POST", f"/templates/{pid}/rollback/1"),
    ]:
        r = await client.request(method, path, headers=bob, json=quiz() if method == "PUT" else None)
        assert r.status_code == 404, (method, path, r.text)
    r = await client.post("/templates/preview", json={"template_id": pid}, headers=bob)
    assert r.status_code == 404
    assert (await client.get(f"/templates/{pub}", headers=bob)).status_code == 200
    assert (await client.get(f"/templates/{pub}/versions", headers=bob)).status_code == 200
    assert (await client.put(f"/templates/{pub}", json=quiz(), headers=bob)).status_code == 403
    assert (await client.delete(f"/templates/{pub}", headers=bob)).status_code == 403
    assert (await client.post(f"/templates/{pub}/rollback/1", headers=bob)).status_code == 403
    listed = (await client.get("/templates", params={"limit": 100}, headers=bob)).json()
    ids = {i["id"] for i in listed["items"]}
    assert pub in ids
    assert pid not in ids
    assert (await client.get("/templates/..%2F..%2Fetc", headers=bob)).status_code in (404, 422)


async def test_list_filters_and_pagination(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    marker = uuid.uuid4().hex[:8]
    for i in range(5):
        await create(client, alice, name=f"List {marker} {i}", category=f"cat-{marker}", tags=[f"t{i % 2}"])
    await create(
        client, alice, name=f"Other {marker}", description=f"about {marker} things", visibility="public"
    )
    page = (
        await client.get("/templates", params={"category": f"cat-{marker}", "limit": 2}, headers=alice)
    ).json()
    assert page["total"] == 5
    assert len(page["items"]) == 2
    assert page["limit"] == 2
    page2 = (
        await client.get(
            "/templates", params={"category": f"cat-{marker}", "limit": 2, "offset": 4}, headers=alice
        )
    ).json()
    assert len(page2["items"]) == 1
    tagged = (
        await client.get("/templates", params={"category": f"cat-{marker}", "tag": "t0"}, headers=alice)
    ).json()
    assert tagged["total"] == 3
    found = (await client.get("/templates", params={"q": marker.upper()}, headers=alice)).json()
    assert found["total"] == 6
    public = (
        await client.get("/templates", params={"q": marker, "visibility": "public"}, headers=alice)
    ).json()
    assert [i["name"] for i in public["items"]] == [f"Other {marker}"]
    mine = (await client.get("/templates", params={"owner": "me", "limit": 100}, headers=alice)).json()
    assert mine["total"] == 6
    item = mine["items"][0]
    assert set(item) >= {"id", "name", "version", "visibility", "tags", "updated_at", "owner_id"}


async def test_versions_diff_rollback(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    t = await create(client, alice)
    tid = t["id"]
    v2 = quiz(
        name=t["name"],
        prompts={"system": "You write quizzes.", "user": "Question {{ index }} about {{ topic }}, hard"},
        model={
            "provider": "openrouter",
            "id": "anthropic/claude-3.5-haiku",
            "temperature": 0.7,
            "max_tokens": 500,
        },
    )
    assert (await client.put(f"/templates/{tid}", json=v2, headers=alice)).json()["version"] == 2
    r = await client.put(f"/templates/{tid}?expected_version=1", json=v2, headers=alice)
    assert r.status_code == 409
    versions = (await client.get(f"/templates/{tid}/versions", headers=alice)).json()
    assert versions["current_version"] == 2
    assert [v["version"] for v in versions["items"]] == [2, 1]
    one = (await client.get(f"/templates/{tid}/versions/1", headers=alice)).json()
    assert one["document"]["prompts"]["user"] == "Question {{ index }} about {{ topic }}"
    assert (await client.get(f"/templates/{tid}/versions/7", headers=alice)).status_code == 404
    diff = (await client.get(f"/templates/{tid}/diff", params={"from": 1, "to": 2}, headers=alice)).json()
    assert diff["changed"]
    assert diff["prompts"]["user"]["changed"]
    assert not diff["prompts"]["system"]["changed"]
    assert diff["model"] == [
        {
            "path": "model.id",
            "op": "changed",
            "from": "openai/gpt-4o-mini",
            "to": "anthropic/claude-3.5-haiku",
        }
    ]
    assert diff["schema"] == []
    assert diff["rules"]["changed"] is False
    rolled = (await client.post(f"/templates/{tid}/rollback/1", headers=alice)).json()
    assert rolled["version"] == 3
    assert rolled["model"]["id"] == "openai/gpt-4o-mini"
    same = (await client.get(f"/templates/{tid}/diff", params={"from": 1}, headers=alice)).json()
    assert same["to_version"] == 3
    assert same["changed"] is False


async def test_validate_endpoint(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    ok = (await client.post("/templates/validate", json=quiz(), headers=alice)).json()
    assert ok == {"valid": True, "errors": [], "warnings": []}
    bad = quiz(
        prompts={"system": "{% if %}", "user": "Hi {{ nobody }}"},
        schema={"type": 12},
        validation={
            "mode": "custom",
            "rules": [{"path": "question", "pattern": "("}, {"path": "zzz", "max_length": 1}],
        },
    )
    report = (await client.post("/templates/validate", json=bad, headers=alice)).json()
    assert report["valid"] is False
    by_path = {e["path"]: e for e in report["errors"]}
    assert by_path["prompts.system"]["line"] == 1
    assert any(p.startswith("schema") for p in by_path)
    assert "validation.rules[0]" in by_path
    assert any("nobody" in w["message"] for w in report["warnings"])
    shape = (await client.post("/templates/validate", json={"name": "x", "bogus": 1}, headers=alice)).json()
    assert shape["valid"] is False
    assert {"bogus", "prompts"} <= {e["path"] for e in shape["errors"]}


async def test_preview_endpoint(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    t = await create(client, alice)
    r = await client.post(
        "/templates/preview", json={"template_id": t["id"], "index": 1, "count": 10}, headers=alice
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["version"] == 1
    assert out["rendered"]["user"] == "Question 1 about physics"
    assert out["request_body"]["model"] == "openai/gpt-4o-mini"
    assert out["request_body"]["response_format"]["json_schema"]["schema"]["required"] == [
        "question",
        "answer",
    ]
    assert out["token_estimate"]["method"] == "chars/4"
    assert out["token_estimate"]["prompt_tokens"] > 0
    assert out["cost_estimate"]["count"] == 10
    assert out["cost_estimate"]["currency"] == "USD"
    r = await client.post(
        "/templates/preview",
        json={
            "template": quiz(),
            "model": "some/unknown-model",
            "count": 3,
            "variables": {"topic": "art"},
            "task": {},
        },
        headers=alice,
    )
    out = r.json()
    assert out["rendered"]["user"] == "Question 0 about art"
    assert out["cost_estimate"] is None
    assert any("not in the catalog" in n for n in out["notes"])
    r = await client.post(
        "/templates/preview", json={"template": quiz(prompts={"user": "{{ missing_var }}"})}, headers=alice
    )
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "render_error"
    assert err["details"]["variable"] == "missing_var"
    r = await client.post(
        "/templates/preview",
        json={"template": quiz(prompts={"user": "{% for i in range(10**9) %}x{% endfor %}"})},
        headers=alice,
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"]["kind"] == "limit_exceeded"
    r = await client.post(
        "/templates/preview",
        json={"template": quiz(prompts={"user": "{{ ''.__class__.__mro__ }}"})},
        headers=alice,
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"]["kind"] == "security"
    r = await client.post(
        "/templates/preview", json={"template": quiz(), "template_id": t["id"]}, headers=alice
    )
    assert r.status_code == 422


async def test_examples_import_validate_preview(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    listing = (await client.get("/templates/examples", headers=alice)).json()
    ids = {e["id"] for e in listing["items"]}
    assert {"quiz", "articles", "data-analyzer", "product-catalog", "support-tickets"} <= ids
    for example_id in sorted(ids):
        r = await client.post(f"/templates/examples/{example_id}/import", headers=alice)
        assert r.status_code == 201, r.text
        assert isinstance(r.json()["notes"], list)
        t = r.json()["template"]
        assert t["version"] == 1
        assert t["visibility"] == "private"
        document = {
            k: v for k, v in t.items() if k not in ("id", "owner_id", "version", "created_at", "updated_at")
        }
        report = (await client.post("/templates/validate", json=document, headers=alice)).json()
        assert report["valid"], (example_id, report)
        r = await client.post("/templates/preview", json={"template_id": t["id"], "count": 5}, headers=alice)
        assert r.status_code == 200, (example_id, r.text)
        assert r.json()["rendered"]["user"]
    r = await client.post(
        "/templates/examples/quiz/import", json={"name": "My quiz", "visibility": "public"}, headers=alice
    )
    assert r.json()["template"]["name"] == "My quiz"
    assert r.json()["template"]["visibility"] == "public"
    assert (await client.post("/templates/examples/nope/import", headers=alice)).status_code == 404


async def test_llm_data_gen_import_endpoint(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    config = {
        "meta": {"name": "Products", "version": "1.0"},
        "api": {"model": "openai/gpt-4o-mini", "temperature": 0.7, "maxTokens": 2000},
        "output": {"type": "array", "fileNameTemplate": "{category}.json"},
        "schema": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "x-llm-generate": {"prompt": "Название товара в {category}"}}
            },
        },
        "prompts": {"system": "Ты копирайтер."},
        "generation": {"tasks": [{"category": "electronics", "count": 2}]},
    }
    r = await client.post("/templates/import/llm-data-gen", json=config, headers=alice)
    assert r.status_code == 201, r.text
    t = r.json()["template"]
    assert t["name"] == "Products"
    assert t["tasks"] == config["generation"]["tasks"]
    out = (await client.post("/templates/preview", json={"template_id": t["id"]}, headers=alice)).json()
    assert '"name": "Название товара в electronics"' in out["rendered"]["user"]
    r = await client.post(
        "/templates/import/llm-data-gen", json={"output": {"format": "json"}}, headers=alice
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"] == {"path": "schema"}


async def test_events_arrive_on_template_events(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    consumer = AIOKafkaConsumer(
        TEMPLATE_EVENTS,
        **kafka_client_options(),
        group_id=f"templates-it-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        t = await create(client, alice)
        tid = t["id"]
        await client.put(f"/templates/{tid}", json=quiz(name="v2", visibility="public"), headers=alice)
        await client.delete(f"/templates/{tid}", headers=alice)
        seen: list[dict[str, Any]] = []

        async def collect() -> None:
            while len(seen) < 3:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for rec in records:
                        envelope = json.loads(rec.value)
                        if envelope.get("subject") == tid:
                            assert rec.key == tid.encode()
                            seen.append(envelope)

        await asyncio.wait_for(collect(), timeout=60)
    finally:
        await consumer.stop()
    assert [e["type"] for e in seen] == [
        "llmts.template.created",
        "llmts.template.updated",
        "llmts.template.deleted",
    ]
    assert [e["data"]["version"] for e in seen] == [1, 2, 2]
    assert seen[1]["data"]["visibility"] == "public"
    assert seen[1]["data"]["name"] == "v2"
    assert seen[0]["source"] == "templates"
    assert seen[0]["data"]["owner_id"] == t["owner_id"]
