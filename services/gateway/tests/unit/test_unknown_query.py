"""Every gateway list route of jobs, history, exports and the catalog refuses query parameters it does not
declare (422 ``validation_error``, one ``extra_forbidden`` detail per name) instead of ignoring them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from llmts_gateway.bootstrap import bootstrap
from llmts_gateway.settings import GatewaySettings


@pytest.fixture
async def gateway() -> AsyncIterator[httpx.AsyncClient]:
    app, _ctx, _runtime = bootstrap(GatewaySettings())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client  # no lifespan: the check answers before any upstream call


@pytest.mark.parametrize(
    ("path", "params", "unknown"),
    [
        ("/history", {"provider": "openrouter", "limit": "5"}, ["provider"]),
        ("/history/j1", {"attempts": "1"}, ["attempts"]),
        ("/generate/j1", {"verbose": "1"}, ["verbose"]),
        ("/generate/j1/result", {"page": "2", "offset": "0"}, ["page"]),
        ("/exports", {"count": "1", "sort": "x"}, ["count", "sort"]),
        ("/exports/e1", {"format": "csv"}, ["format"]),
        ("/generate/j1/export", {"fmt": "csv"}, ["fmt"]),
        ("/providers/models", {"paid": "true"}, ["paid"]),
        ("/providers", {"q": "x"}, ["q"]),
    ],
)
async def test_unknown_query_parameters_answer_422(
    gateway: httpx.AsyncClient, path: str, params: dict[str, str], unknown: list[str]
) -> None:
    resp = await gateway.get(path, params=params, headers={"authorization": "Bearer not-checked-before"})
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "validation_error"
    assert [(d["loc"], d["type"]) for d in error["details"]] == [
        (["query", n], "extra_forbidden") for n in unknown
    ]
