"""``GET /schemas/...``: every ``dataschema`` URL an event carries resolves, without a token, to the published file,
cacheable (ETag, 304); anything else is a 404 with the error body, never a file outside the schema directory."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from llmts_common.contracts import ALL_MESSAGES
from llmts_common.envelope import schema_url
from llmts_gateway.bootstrap import bootstrap
from llmts_gateway.settings import GatewaySettings

SCHEMAS = Path(__file__).resolve().parents[4] / "docs" / "schemas"


@pytest.fixture(scope="module")
async def gateway() -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(schemas_dir=str(SCHEMAS), public_base_url="http://gateway")
    app, _ctx, _runtime = bootstrap(settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client  # no lifespan: the route needs neither Kafka nor Mongo


async def test_every_dataschema_url_resolves_to_its_file(gateway: httpx.AsyncClient) -> None:
    for message in ALL_MESSAGES:
        url = schema_url(
            message.TYPE, message.VERSION, GatewaySettings(public_base_url="http://gateway").schema_base_url
        )
        resp = await gateway.get(urlsplit(url).path)  # no Authorization header
        assert resp.status_code == 200, (url, resp.text)
        assert resp.headers["content-type"] == "application/schema+json"
        assert resp.headers["cache-control"] == "public, max-age=86400, immutable"
        assert resp.json()["x-llmts-type"] == message.TYPE
        assert resp.content == (SCHEMAS / message.TYPE / f"v{message.VERSION}.json").read_bytes()


async def test_the_index_and_the_envelope_are_served(gateway: httpx.AsyncClient) -> None:
    index = await gateway.get("/schemas/index.json")
    assert index.status_code == 200
    assert index.headers["cache-control"] == "public, max-age=300"
    listed = {m["type"] for m in index.json()["messages"]}
    assert listed == {m.TYPE for m in ALL_MESSAGES}
    envelope = await gateway.get("/schemas/envelope.json")
    assert envelope.json() == json.loads((SCHEMAS / "envelope.json").read_text())


async def test_a_known_etag_answers_304(gateway: httpx.AsyncClient) -> None:
    first = await gateway.get("/schemas/llmts.export.ready/v1.json")
    again = await gateway.get(
        "/schemas/llmts.export.ready/v1.json", headers={"if-none-match": first.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/schemas/llmts.export.ready/v99.json",
        "/schemas/llmts.nope/v1.json",
        "/schemas/..%2F..%2Fpyproject/v1.json",
        "/schemas/llmts.export.ready/v0.json",
        "/schemas/other.json",
        "/schemas/llmts.export.ready/v1.yaml",
    ],
)
async def test_anything_else_is_a_clean_4xx(gateway: httpx.AsyncClient, path: str) -> None:
    resp = await gateway.get(path)
    assert resp.status_code in (404, 422), resp.text
    assert set(resp.json()["error"]) >= {"code", "message", "details"}


async def test_a_missing_directory_answers_404_not_500(tmp_path: Path) -> None:
    app, _ctx, _runtime = bootstrap(GatewaySettings(schemas_dir=str(tmp_path / "absent")))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        resp = await client.get("/schemas/index.json")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "schema_not_found"
