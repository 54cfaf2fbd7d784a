"""ExportReady's signed download link: absolute, opens the file without a token until it expires; a tampered or
expired link answers 403 with the error body."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from llmts_common.contracts import ExportRequested

from .conftest import Stack, job_completed, job_items, job_started, make_items


@pytest.fixture(scope="module")
async def ready(stack: Stack) -> dict[str, object]:
    job_id, user_id, export_id = (f"{p}-{uuid.uuid4().hex[:10]}" for p in ("job", "user", "exp"))
    items = make_items(3)
    await stack.publish(
        job_started(job_id, user_id, 3), *job_items(job_id, user_id, items), job_completed(job_id, user_id, 3)
    )
    await stack.publish(ExportRequested(export_id=export_id, job_id=job_id, user_id=user_id, format="csv"))
    event = await stack.events.wait_for(export_id)
    assert event.type == "llmts.export.ready", event.data
    return dict(event.data)


def _split(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


async def test_the_link_is_absolute_and_downloads_without_a_token(
    stack: Stack, ready: dict[str, object]
) -> None:
    url = str(ready["download_url"])
    assert url.startswith(f"http://exporter/downloads/{ready['export_id']}?expires=")
    expires_at = datetime.fromisoformat(str(ready["download_expires_at"]))
    assert timedelta(seconds=590) < expires_at - stack.clock() <= timedelta(seconds=600)
    resp = await stack.http.get(url)  # no Authorization header
    assert resp.status_code == 200, resp.text
    assert hashlib.sha256(resp.content).hexdigest() == ready["sha256"]
    assert len(resp.content) == ready["bytes"]
    assert resp.headers["content-disposition"].startswith("attachment;")


@pytest.mark.parametrize("change", ["signature", "expires", "export_id"])
async def test_a_tampered_link_is_refused(stack: Stack, ready: dict[str, object], change: str) -> None:
    path, query = _split(str(ready["download_url"]))
    if change == "signature":
        query["signature"] = ("0" if query["signature"][0] != "0" else "1") + query["signature"][1:]
    elif change == "expires":
        query["expires"] = str(int(query["expires"]) + 86_400)
    else:
        path = path.rsplit("/", 1)[0] + "/someone-elses-export"
    resp = await stack.http.get(f"{path}?{urlencode(query)}")
    assert resp.status_code == 403
    error = resp.json()["error"]
    assert error["code"] == "link_invalid"
    assert set(error) >= {"code", "message", "details"}


async def test_an_expired_link_is_refused(stack: Stack, ready: dict[str, object]) -> None:
    stack.clock.shift += timedelta(seconds=601)
    try:
        resp = await stack.http.get(str(ready["download_url"]))
    finally:
        stack.clock.shift -= timedelta(seconds=601)
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "link_expired"


async def test_without_the_signature_or_a_token_nothing_is_served(
    stack: Stack, ready: dict[str, object]
) -> None:
    export_id = ready["export_id"]
    assert (await stack.http.get(f"/downloads/{export_id}")).status_code == 422
    assert (await stack.http.get(f"/exports/{export_id}/download")).status_code == 401
