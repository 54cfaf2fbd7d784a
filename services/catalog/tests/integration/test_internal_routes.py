"""Provider tests and sync are internal: only the ``INTERNAL_TOKEN`` opens them, directly on the catalog's port."""

from __future__ import annotations

import httpx
import pytest
from tests.support.internal import internal_headers

from .conftest import StartCatalog

_INTERNAL = [("/providers/test", {"provider": "ollama"}), ("/providers/sync", {"provider": "ollama"})]


@pytest.mark.parametrize(("path", "body"), _INTERNAL)
async def test_internal_routes_refuse_without_the_token(
    start_catalog: StartCatalog, path: str, body: dict[str, str]
) -> None:
    async with start_catalog() as svc:
        client = svc.client
        for headers in ({"X-Internal-Token": ""}, {"X-Internal-Token": "wrong-token"}):
            resp = await client.post(path, json=body, headers=headers)
            assert resp.status_code == 401, resp.text
            assert resp.json()["error"]["code"] == "invalid_internal_token"
        bare = httpx.AsyncClient(transport=svc.transport, base_url="http://catalog")
        async with bare:
            resp = await bare.post(path, json=body)
        assert resp.status_code == 401
        ok = await client.post(path, json=body, headers=internal_headers())
        assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(("path", "body"), _INTERNAL)
async def test_without_a_configured_token_internal_routes_are_closed(
    start_catalog: StartCatalog, path: str, body: dict[str, str]
) -> None:
    async with start_catalog(internal_token=None) as svc:
        resp = await svc.client.post(path, json=body, headers=internal_headers())
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "internal_disabled"


async def test_reads_stay_open_to_services(start_catalog: StartCatalog) -> None:
    async with start_catalog() as svc:
        await svc.sync("ollama")
        bare = httpx.AsyncClient(transport=svc.transport, base_url="http://catalog")
        async with bare:
            resp = await bare.get("/providers/models", params={"provider": "ollama"})
    assert resp.status_code == 200
