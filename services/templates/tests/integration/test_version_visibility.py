"""Issue 14 finding 10, through the HTTP API on the real database: once a template is made public, another
user reads only the versions that were public when they were current — never its private history (versions,
one version, diff, preview of a version)."""

from __future__ import annotations

import httpx
from services.templates.tests.integration.test_templates_api import create, quiz


async def test_private_history_stays_private_after_going_public(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    t = await create(client, alice, prompts={"user": "private draft about {{ topic }}"})
    tid = t["id"]
    public = quiz(name=t["name"], visibility="public")
    r = await client.put(f"/templates/{tid}", json=public, headers=alice)
    assert r.json()["version"] == 2, r.text
    for method, path, body in [
        ("GET", f"/templates/{tid}/versions/1", None),
        ("GET", f"/templates/{tid}/diff?from=1", None),
        ("GET", f"/templates/{tid}/diff?from=2&to=1", None),
        ("POST", "/templates/preview", {"template_id": tid, "version": 1}),
    ]:
        r = await client.request(method, path, json=body, headers=bob)
        assert r.status_code == 404, (path, r.text)
        assert "private draft" not in r.text
    listed = (await client.get(f"/templates/{tid}/versions", headers=bob)).json()
    assert [v["version"] for v in listed["items"]] == [2]
    assert listed["total"] == 1
    assert (await client.get(f"/templates/{tid}/versions/2", headers=bob)).status_code == 200
    r = await client.post("/templates/preview", json={"template_id": tid, "version": 2}, headers=bob)
    assert r.status_code == 200, r.text
    # the owner keeps the whole history
    own = (await client.get(f"/templates/{tid}/versions", headers=alice)).json()
    assert [v["version"] for v in own["items"]] == [2, 1]
    one = (await client.get(f"/templates/{tid}/versions/1", headers=alice)).json()
    assert one["document"]["prompts"]["user"] == "private draft about {{ topic }}"
