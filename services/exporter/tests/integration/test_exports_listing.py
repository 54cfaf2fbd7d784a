"""``GET /exports`` answers the one list shape ``{items, total, limit, offset}`` and pages with ``offset``."""

from __future__ import annotations

import uuid

from llmts_common.contracts import ExportRequested

from .conftest import Stack, job_completed, job_items, job_started, make_items


def _uid() -> str:
    return uuid.uuid4().hex[:12]


async def test_the_list_is_paged_with_total_limit_and_offset(stack: Stack) -> None:
    job_id, user_id = f"job-{_uid()}", f"user-{_uid()}"
    await stack.publish(
        job_started(job_id, user_id, 2),
        *job_items(job_id, user_id, make_items(2)),
        job_completed(job_id, user_id, 2),
    )
    ids = []
    for fmt in ("json", "csv", "md"):
        export_id = _uid()
        ids.append(export_id)
        await stack.publish(ExportRequested(export_id=export_id, job_id=job_id, user_id=user_id, format=fmt))
        await stack.events.wait_for(export_id)
    headers = stack.signer.headers(user_id)

    first = (await stack.http.get("/exports", params={"job_id": job_id, "limit": 2}, headers=headers)).json()
    assert set(first) == {"items", "total", "limit", "offset"}
    assert (first["total"], first["limit"], first["offset"], len(first["items"])) == (3, 2, 0, 2)
    rest = (
        await stack.http.get("/exports", params={"job_id": job_id, "limit": 2, "offset": 2}, headers=headers)
    ).json()
    assert (rest["total"], rest["offset"], len(rest["items"])) == (3, 2, 1)
    seen = [e["export_id"] for e in first["items"] + rest["items"]]
    assert sorted(seen) == sorted(ids)  # every export once across the pages, newest first
    only_csv = (
        await stack.http.get("/exports", params={"job_id": job_id, "format": "csv"}, headers=headers)
    ).json()
    assert [e["format"] for e in only_csv["items"]] == ["csv"]
    assert only_csv["total"] == 1


async def test_a_bad_offset_is_a_validation_error(stack: Stack) -> None:
    resp = await stack.http.get(
        "/exports", params={"offset": -1}, headers=stack.signer.headers(f"user-{_uid()}")
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["details"][0]["loc"] == ["query", "offset"]
