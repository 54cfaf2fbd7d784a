"""Templates through the gateway: the real templates app (uvicorn, in-process, free port) behind the real gateway.

Both verify tokens signed with a throwaway Ed25519 key (``JwksVerifier(keyset=...)`` injected); Mongo and Kafka are
the local ones, each app with its own database and consumer group.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from joserfc.jwk import OKPKey
from tests.support.serve import serve
from tests.support.tokens import Signer, signing_key, verifier_for

from llmts_gateway.bootstrap import bootstrap as gateway_bootstrap
from llmts_gateway.settings import GatewaySettings
from llmts_templates.bootstrap import bootstrap as templates_bootstrap
from llmts_templates.settings import TemplatesSettings


@pytest.fixture(scope="module")
def key() -> OKPKey:
    return signing_key()


@pytest.fixture(scope="module")
def auth(key: OKPKey) -> Callable[[str], dict[str, str]]:
    return Signer(key).headers


@pytest.fixture(scope="module")
async def templates_url(key: OKPKey) -> AsyncIterator[str]:
    settings = TemplatesSettings(
        mongo_db=f"llmts_templates_gw_{uuid.uuid4().hex[:10]}",
        log_json=False,
        catalog_url="http://127.0.0.1:9",  # no catalog here: estimates are null with a note
    )
    app, _ = templates_bootstrap(settings, verifier=verifier_for(key))
    async with serve(app) as url:
        yield url


@pytest.fixture(scope="module")
async def gateway(templates_url: str, key: OKPKey) -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(
        templates_url=templates_url,
        mongo_db=f"llmts_gateway_tpl_{uuid.uuid4().hex[:10]}",
        kafka_group_id=f"gateway-tpl-{uuid.uuid4().hex[:8]}",
        log_json=False,
    )
    app, _, _ = gateway_bootstrap(settings, verifier=verifier_for(key))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=30) as client:
            yield client


def _doc(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"GW quiz {uuid.uuid4().hex[:6]}",
        "category": "education",
        "tags": ["quiz"],
        "prompts": {"system": "You write quizzes.", "user": "Question {{ index }} about {{ topic }}"},
        "schema": {
            "type": "object",
            "properties": {"question": {"type": "string"}},
            "required": ["question"],
        },
        "validation": {"mode": "custom", "rules": [{"path": "question", "min_length": 10}]},
        "variables": {"topic": "history"},
        "model": {"id": "openai/gpt-4o-mini", "temperature": 0.5, "max_tokens": 300},
    }
    body.update(over)
    return body


async def test_templates_through_the_gateway(
    gateway: httpx.AsyncClient, auth: Callable[[str], dict[str, str]]
) -> None:
    alice, bob = auth(f"alice-{uuid.uuid4().hex[:6]}"), auth(f"bob-{uuid.uuid4().hex[:6]}")

    assert (await gateway.get("/templates")).status_code == 401

    r = await gateway.post("/templates", json=_doc(), headers=alice)
    assert r.status_code == 201, r.text
    t = r.json()
    tid = t["id"]

    listed = (await gateway.get("/templates", params={"owner": "me"}, headers=alice)).json()
    assert listed["total"] == 1
    assert listed["items"][0]["id"] == tid
    assert (await gateway.get(f"/templates/{tid}", headers=alice)).json()["version"] == 1

    r = await gateway.put(f"/templates/{tid}", json=_doc(name="Renamed"), headers=alice)
    assert r.status_code == 200
    assert r.json()["version"] == 2
    versions = (await gateway.get(f"/templates/{tid}/versions", headers=alice)).json()
    assert [v["version"] for v in versions["items"]] == [2, 1]
    assert (await gateway.get(f"/templates/{tid}/versions/1", headers=alice)).json()["document"]["name"] == t[
        "name"
    ]
    diff = (await gateway.get(f"/templates/{tid}/diff", params={"from": 1, "to": 2}, headers=alice)).json()
    assert diff["changed"]
    assert [c["path"] for c in diff["other"]] == ["name"]
    r = await gateway.post(f"/templates/{tid}/rollback/1", headers=alice)
    assert r.status_code == 200
    assert r.json()["version"] == 3
    assert r.json()["name"] == t["name"]

    report = (
        await gateway.post("/templates/validate", json=_doc(prompts={"user": "{{ x"}), headers=alice)
    ).json()
    assert report["valid"] is False
    assert report["errors"][0]["path"] == "prompts.user"

    r = await gateway.post(
        "/templates/preview", json={"template_id": tid, "index": 2, "count": 4}, headers=alice
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["rendered"]["user"] == "Question 2 about history"
    assert out["request_body"]["model"] == "openai/gpt-4o-mini"
    assert out["cost_estimate"] is None
    assert any("catalog unavailable" in n for n in out["notes"])
    r = await gateway.post(
        "/templates/preview", json={"template": _doc(prompts={"user": "{{ nope }}"})}, headers=alice
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"]["variable"] == "nope"

    examples = (await gateway.get("/templates/examples", headers=alice)).json()
    assert examples["total"] >= 5
    r = await gateway.post("/templates/examples/support-tickets/import", headers=alice)
    assert r.status_code == 201
    assert r.json()["template"]["name"] == "Обращения в поддержку"
    assert isinstance(r.json()["notes"], list)

    config = {
        "meta": {"name": "Emails"},
        "api": {"model": "openrouter/auto", "temperature": 0.7, "maxTokens": 1000},
        "output": {"format": "text"},
        "prompts": {"system": "You write emails.", "userPrompt": "Write a {type} email."},
        "generation": {"tasks": [{"type": "business", "count": 1}]},
    }
    r = await gateway.post("/templates/import/llm-data-gen", json=config, headers=alice)
    assert r.status_code == 201, r.text
    imported = r.json()["template"]
    out = (
        await gateway.post("/templates/preview", json={"template_id": imported["id"]}, headers=alice)
    ).json()
    assert out["rendered"]["user"] == "Write a business email."

    # another user: the private template does not exist for them
    assert (await gateway.get(f"/templates/{tid}", headers=bob)).status_code == 404
    assert (await gateway.put(f"/templates/{tid}", json=_doc(), headers=bob)).status_code == 404
    assert (await gateway.get(f"/templates/{tid}/versions", headers=bob)).status_code == 404
    assert (await gateway.delete(f"/templates/{tid}", headers=bob)).status_code == 404
    assert (await gateway.get("/templates", params={"owner": "me"}, headers=bob)).json()["total"] == 0

    # validated at the gateway: no round trip for a malformed request
    assert (await gateway.post("/templates", json=_doc(unknown=1), headers=alice)).status_code == 422
    assert (await gateway.get("/templates", params={"limit": 0}, headers=alice)).status_code == 422
    assert (await gateway.get("/templates/bad%20id", headers=alice)).status_code == 422

    assert (await gateway.delete(f"/templates/{tid}", headers=alice)).status_code == 204
    assert (await gateway.get(f"/templates/{tid}", headers=alice)).status_code == 404


async def test_openapi_documents_every_templates_route(gateway: httpx.AsyncClient) -> None:
    spec = (await gateway.get("/openapi.json")).json()
    paths = {p for p in spec["paths"] if p.startswith("/templates")}
    assert paths == {
        "/templates",
        "/templates/examples",
        "/templates/examples/{example_id}/import",
        "/templates/validate",
        "/templates/preview",
        "/templates/import/llm-data-gen",
        "/templates/{template_id}",
        "/templates/{template_id}/versions",
        "/templates/{template_id}/versions/{n}",
        "/templates/{template_id}/diff",
        "/templates/{template_id}/rollback/{n}",
        "/templates/categories",
        "/templates/tags",
    }
    patch = spec["paths"]["/templates/{template_id}"]["patch"]
    assert set(patch["requestBody"]["content"]) == {"application/merge-patch+json", "application/json"}
    assert "415" in patch["responses"]
    for path in paths:
        for op in spec["paths"][path].values():
            assert op["tags"] == ["templates"]
            assert "401" in op["responses"]


async def test_issue_19_templates_routes_through_the_gateway(
    gateway: httpx.AsyncClient, auth: Callable[[str], dict[str, str]]
) -> None:
    alice = auth(f"alice-{uuid.uuid4().hex[:6]}")
    m = uuid.uuid4().hex[:6]
    r = await gateway.post(
        "/templates", json=_doc(prompts={"user": "Hello {{ product \n {% for %}"}), headers=alice
    )
    assert r.status_code == 422
    detail = r.json()["error"]["details"][0]
    assert (detail["loc"], detail["line"], detail["column"]) == (["body", "prompts", "user"], 2, 2)
    tid = (
        await gateway.post(
            "/templates", json=_doc(category=f"Cat-{m}", tags=[f"Tag-{m}", "x"]), headers=alice
        )
    ).json()["id"]

    listed = await gateway.get(
        "/templates", params=[("tag", f"tag-{m}"), ("tag", "X"), ("category", f"cat-{m}")], headers=alice
    )
    assert [i["id"] for i in listed.json()["items"]] == [tid]
    cats = (await gateway.get("/templates/categories", params={"owner": "me"}, headers=alice)).json()
    assert cats["items"] == [{"name": f"Cat-{m}", "count": 1}]
    tags = (await gateway.get("/templates/tags", params={"owner": "me"}, headers=alice)).json()
    assert {i["name"]: i["count"] for i in tags["items"]} == {f"Tag-{m}": 1, "x": 1}

    r = await gateway.patch(
        f"/templates/{tid}",
        content=b'{"name": "Patched", "tags": null}',
        headers={"content-type": "application/merge-patch+json", **alice},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["version"], r.json()["name"], r.json()["tags"]) == (2, "Patched", [])
    r = await gateway.patch(
        f"/templates/{tid}", content=b"x", headers={"content-type": "text/plain", **alice}
    )
    assert r.status_code == 415

    for path in (
        "/templates?tags=x",
        "/templates/categories?limit=1",
        f"/templates/{tid}?x=1",
        "/templates/examples?y=2",
    ):
        r = await gateway.get(path, headers=alice)
        assert r.status_code == 422, (path, r.text)
        assert r.json()["error"]["details"][0]["type"] == "extra_forbidden"
