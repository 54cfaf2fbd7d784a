"""The generator's ``/internal/*`` routes open only with ``INTERNAL_TOKEN``: not to a user token, not without one."""

from __future__ import annotations

import uuid

import httpx
import pytest
from services.generator.tests.integration.conftest import Harness, make_settings
from services.generator.tests.support import command
from tests.support.internal import INTERNAL_TOKEN, internal_headers
from tests.support.tokens import signing_key, verifier_for

from llmts_generator.bootstrap import bootstrap

_ROUTES = ("/internal/generate/{job_id}", "/internal/generate/{job_id}/items")


async def test_internal_routes_need_the_internal_token(h: Harness) -> None:
    owner = f"user-{uuid.uuid4().hex[:8]}"
    msg = command(owner, count=2, concurrency=2)
    await h.run(msg)
    for route in _ROUTES:
        path = route.format(job_id=msg.job_id)
        for headers in ({}, h.auth(owner), {"X-Internal-Token": "not-the-token"}, {"X-Internal-Token": ""}):
            resp = await h.http.get(path, headers=headers)
            assert resp.status_code == 401, (path, headers, resp.text)
            assert resp.json()["error"]["code"] == "invalid_internal_token"
            assert owner not in resp.text
        ok = await h.http.get(path, headers=internal_headers())
        assert ok.status_code == 200, ok.text
    items = (await h.http.get(_ROUTES[1].format(job_id=msg.job_id), headers=internal_headers())).json()
    assert len(items["items"]) == 2


@pytest.mark.parametrize("route", _ROUTES)
async def test_a_generator_without_a_token_refuses_every_internal_call(route: str, session_id: str) -> None:
    settings = make_settings(session_id, internal_token=None)
    app, _gen = bootstrap(settings, verifier=verifier_for(signing_key()), configure_process=False)
    transport = httpx.ASGITransport(app=app)  # no lifespan: the guard answers before any storage is touched
    async with httpx.AsyncClient(transport=transport, base_url="http://generator") as client:
        resp = await client.get(route.format(job_id="any"), headers=internal_headers(INTERNAL_TOKEN))
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "internal_disabled"
