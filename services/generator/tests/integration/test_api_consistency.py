"""The generator's HTTP API speaks like every other list: unknown query parameters are refused (422), history's
``model`` filter finds a part of the id in any case, and timestamps end in ``Z``."""

from __future__ import annotations

import uuid

from services.generator.tests.integration.conftest import Harness
from services.generator.tests.support import MODEL, command


def user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


async def test_unknown_query_parameters_are_refused(h: Harness) -> None:
    owner = user()
    msg = command(owner, count=1)
    await h.run(msg)
    for path, params in (
        ("/history", {"provider": "openrouter"}),
        ("/history", {"status": "completed", "sort": "created_at"}),
        (f"/generate/{msg.job_id}/result", {"page": "2"}),
        (f"/history/{msg.job_id}", {"attempts": "5"}),
    ):
        r = await h.http.get(path, params=params, headers=h.auth(owner))
        assert r.status_code == 422, (path, params, r.text)
        error = r.json()["error"]
        assert error["code"] == "validation_error"
        unknown = [d["loc"] for d in error["details"]]
        assert unknown == [["query", name] for name in params if name not in ("status",)]
    ok = await h.http.get("/history", params={"status": "completed", "limit": 5}, headers=h.auth(owner))
    assert ok.status_code == 200


async def test_history_model_filter_is_a_case_insensitive_part_of_the_id(h: Harness) -> None:
    owner = user()
    msg = command(owner, count=1)
    await h.run(msg)
    part = MODEL.split("/")[-1][:6].upper()
    for value, total in ((part, 1), (MODEL, 1), (MODEL.upper(), 1), ("no-such-model", 0), (".*", 0)):
        r = await h.http.get("/history", params={"model": value}, headers=h.auth(owner))
        assert r.status_code == 200
        assert r.json()["total"] == total, value


async def test_timestamps_end_in_z(h: Harness) -> None:
    owner = user()
    msg = command(owner, count=1)
    await h.run(msg)
    view = (await h.http.get(f"/generate/{msg.job_id}", headers=h.auth(owner))).json()
    for key in ("created_at", "started_at", "finished_at"):
        assert view["timings"][key].endswith("Z"), (key, view["timings"][key])
    detail = (await h.http.get(f"/history/{msg.job_id}", headers=h.auth(owner))).json()
    assert all(a["started_at"].endswith("Z") for a in detail["attempts"]["items"])


async def test_items_carry_their_inputs(h: Harness) -> None:
    owner = user()
    tasks = [{"topic": "Physics", "count": 2}, {"topic": "History"}]
    msg = command(owner, count=3, tasks=tasks, variables={"lang": "ru"})
    await h.run(msg)
    result = (await h.http.get(f"/generate/{msg.job_id}/result", headers=h.auth(owner))).json()
    by_target = {i["inputs"]["target"]: i["inputs"] for i in result["items"]}
    assert sorted(by_target) == [0, 1, 2]
    assert by_target[0] == {
        "target": 0,
        "task": 0,
        "task_index": 0,
        "row": {"topic": "Physics", "count": 2},
        "variables": {"lang": "ru"},
    }
    assert (by_target[1]["task"], by_target[1]["task_index"]) == (0, 1)
    assert (by_target[2]["task"], by_target[2]["row"]["topic"]) == (1, "History")
    events = h.tap.events(msg.job_id, "item_generated")
    assert sorted(e["data"]["inputs"]["target"] for e in events) == [0, 1, 2]
