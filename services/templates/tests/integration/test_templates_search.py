"""Issue 19 in the templates service, over HTTP against the real Mongo-wire server: render-checked saves,
case-insensitive category and tag search with several tags, categories and tags with counts, and 422 for
unknown query parameters."""

from __future__ import annotations

import uuid

import httpx
from services.templates.tests.integration.test_templates_api import create, quiz


async def test_a_template_that_does_not_compile_is_refused_with_line_and_column(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    broken = quiz(prompts={"user": "Hello {{ product \n {% for %}"})
    r = await client.post("/templates", json=broken, headers=alice)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "validation_error"
    assert [(d["loc"], d["path"], d["line"], d["column"], d["type"]) for d in err["details"]] == [
        (["body", "prompts", "user"], "prompts.user", 2, 2, "syntax")
    ]
    report = (await client.post("/templates/validate", json=broken, headers=alice)).json()
    assert [(e["path"], e["line"], e["column"]) for e in report["errors"]] == [("prompts.user", 2, 2)]
    ok = await create(client, alice)
    r = await client.put(f"/templates/{ok['id']}", json=broken, headers=alice)
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["path"] == "prompts.user"
    assert (await client.get(f"/templates/{ok['id']}", headers=alice)).json()["version"] == 1


async def test_category_and_tags_case_insensitive_and_all_tags_must_match(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    m = uuid.uuid4().hex[:8]
    await create(client, alice, name="a", category=f"Edu-{m}", tags=[f"Quiz-{m}", f"math-{m}"])
    await create(client, alice, name="b", category=f"edu-{m}", tags=[f"quiz-{m}"])
    await create(client, alice, name="c", category=f"edu-{m}x", tags=[f"quiz-{m}x"])  # no prefix match

    async def names(params: list[tuple[str, str]]) -> list[str]:
        r = await client.get("/templates", params=params, headers=alice)
        assert r.status_code == 200, r.text
        return sorted(i["name"] for i in r.json()["items"])

    assert await names([("category", f"EDU-{m}")]) == ["a", "b"]
    assert await names([("tag", f"QUIZ-{m}")]) == ["a", "b"]
    assert await names([("tag", f"quiz-{m}"), ("tag", f"MATH-{m}")]) == ["a"]
    assert await names([("tag", f"quiz-{m}"), ("tag", f"nope-{m}")]) == []
    assert await names([("tag", f"Quiz-{m}.*")]) == []  # the value is literal text, never a pattern


async def test_categories_and_tags_with_counts_only_what_the_caller_may_see(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    m = uuid.uuid4().hex[:8]
    await create(client, alice, category=f"Edu-{m}", tags=[f"Quiz-{m}", f"math-{m}"])
    await create(client, alice, category=f"edu-{m}", tags=[f"quiz-{m}"])
    await create(client, bob, category=f"edu-{m}", tags=[f"quiz-{m}"], visibility="public")
    await create(client, bob, category=f"secret-{m}", tags=[f"hidden-{m}"])

    async def facet(path: str, user: dict[str, str], **params: str) -> dict[str, int]:
        r = await client.get(f"/templates/{path}", params=params, headers=user)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == len(body["items"])
        return {i["name"]: i["count"] for i in body["items"] if m in i["name"]}

    assert await facet("categories", alice) == {f"edu-{m}": 3}
    assert await facet("tags", alice) == {f"quiz-{m}": 3, f"math-{m}": 1}
    assert await facet("tags", alice, owner="me") == {f"Quiz-{m}": 2, f"math-{m}": 1}
    assert await facet("categories", alice, visibility="public") == {f"edu-{m}": 1}
    assert await facet("categories", bob) == {f"edu-{m}": 1, f"secret-{m}": 1}


async def test_unknown_query_parameters_are_422_on_every_route(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    t = await create(client, alice)
    for method, path in [
        ("GET", "/templates?tags=quiz"),
        ("GET", "/templates?sort=name"),
        ("GET", "/templates/categories?limit=5"),
        ("GET", "/templates/tags?q=x"),
        ("GET", "/templates/examples?x=1"),
        ("GET", f"/templates/{t['id']}?verbose=1"),
        ("GET", f"/templates/{t['id']}/versions?page=2"),
        ("GET", f"/templates/{t['id']}/diff?from=1&too=1"),
        ("DELETE", f"/templates/{t['id']}?force=1"),
        ("POST", "/templates/import/llm-data-gen?visibilty=public"),
    ]:
        r = await client.request(method, path, headers=alice, json={} if method == "POST" else None)
        assert r.status_code == 422, (path, r.text)
        err = r.json()["error"]
        assert err["code"] == "validation_error", path
        assert err["details"][0]["type"] == "extra_forbidden", path
    assert (await client.get(f"/templates/{t['id']}", headers=alice)).status_code == 200  # not deleted


async def test_patch_merge_patch_over_http(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    t = await create(client, alice)
    url = f"/templates/{t['id']}"
    merge = {"content-type": "application/merge-patch+json", **alice}
    body = b'{"name": "Patched", "model": {"temperature": 0.1}, "category": null}'
    r = await client.patch(url, content=body, headers=merge)
    assert r.status_code == 200, r.text
    assert (r.json()["version"], r.json()["name"], r.json()["category"]) == (2, "Patched", None)
    assert r.json()["model"]["id"] == "openai/gpt-4o-mini"
    assert r.json()["model"]["temperature"] == 0.1
    r = await client.patch(url, json={"description": "plain json works too"}, headers=alice)
    assert r.json()["version"] == 3
    r = await client.patch(url, params={"expected_version": 1}, json={"name": "x"}, headers=alice)
    assert r.status_code == 409
    r = await client.patch(url, content=b"name=x", headers={"content-type": "text/plain", **alice})
    assert r.status_code == 415
    assert r.json()["error"]["code"] == "unsupported_media_type"
    for bad in (b"{not json", b"[1]", b'{"prompts": {"user": "{% if %}"}}', b'{"schema": null}'):
        r = await client.patch(url, content=bad, headers=merge)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["error"]["code"] == "validation_error"
        assert r.json()["error"]["details"][0]["loc"][0] == "body"
    assert (await client.get(url, headers=alice)).json()["version"] == 3
