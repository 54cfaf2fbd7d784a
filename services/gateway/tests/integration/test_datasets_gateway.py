"""Seed datasets through the gateway: the real templates app (uvicorn, free port) behind the real gateway — the
upload streams through (never buffered; 413 past the gateway's limit), reads and deletes are forwarded, isolation."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from joserfc.jwk import OKPKey
from tests.support.serve import serve
from tests.support.tokens import Signer, signing_key, verifier_for

from llmts_gateway.bootstrap import bootstrap as gateway_bootstrap
from llmts_gateway.settings import GatewaySettings
from llmts_templates.bootstrap import bootstrap as templates_bootstrap
from llmts_templates.settings import TemplatesSettings

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def key() -> OKPKey:
    return signing_key()


@pytest.fixture(scope="module")
def auth(key: OKPKey) -> Callable[[str], dict[str, str]]:
    return Signer(key).headers


@pytest.fixture(scope="module")
async def gateway(key: OKPKey) -> AsyncIterator[httpx.AsyncClient]:
    templates = TemplatesSettings(
        mongo_db=f"llmts_templates_ds_{uuid.uuid4().hex[:10]}",
        log_json=False,
        catalog_url="http://127.0.0.1:9",
    )
    app, _ = templates_bootstrap(templates, verifier=verifier_for(key))
    async with serve(app) as url:
        settings = GatewaySettings(
            templates_url=url,
            mongo_db=f"llmts_gateway_ds_{uuid.uuid4().hex[:10]}",
            kafka_group_id=f"gateway-ds-{uuid.uuid4().hex[:8]}",
            log_json=False,
            dataset_max_bytes=LIMIT,
        )
        gw, _, _ = gateway_bootstrap(settings, verifier=verifier_for(key))
        async with gw.router.lifespan_context(gw):
            transport = httpx.ASGITransport(app=gw)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://gateway", timeout=30
            ) as client:
                yield client


def _csv(rows: int) -> bytes:
    return ("город,население\n" + "".join(f"Город {i},{1000 + i}\n" for i in range(rows))).encode()


async def test_upload_list_rows_delete_through_the_gateway(
    gateway: httpx.AsyncClient, auth: Callable[[str], dict[str, str]]
) -> None:
    alice = auth(f"alice-{uuid.uuid4().hex[:6]}")

    async def body() -> AsyncIterator[bytes]:  # chunked, as a large upload arrives
        data = _csv(1500)
        for i in range(0, len(data), 4096):
            yield data[i : i + 4096]

    r = await gateway.post(
        "/datasets", params={"name": "города"}, content=body(), headers={**alice, "Content-Type": "text/csv"}
    )
    assert r.status_code == 201, r.text
    ds = r.json()
    assert ds["rows"] == 1500
    assert {c["name"]: c["type"] for c in ds["columns"]} == {"город": "string", "население": "integer"}
    page = await gateway.get(f"/datasets/{ds['id']}/rows", params={"offset": 999, "limit": 2}, headers=alice)
    assert page.json()["rows"] == [
        {"город": "Город 999", "население": "1999"},
        {"город": "Город 1000", "население": "2000"},
    ]
    assert [d["id"] for d in (await gateway.get("/datasets", headers=alice)).json()["items"]] == [ds["id"]]
    bob = auth(f"bob-{uuid.uuid4().hex[:6]}")
    assert (await gateway.get(f"/datasets/{ds['id']}", headers=bob)).status_code == 404
    assert (await gateway.delete(f"/datasets/{ds['id']}", headers=alice)).status_code == 204
    assert (await gateway.get(f"/datasets/{ds['id']}", headers=alice)).status_code == 404


async def test_the_gateway_refuses_what_it_need_not_forward(
    gateway: httpx.AsyncClient, auth: Callable[[str], dict[str, str]]
) -> None:
    alice = auth(f"alice-{uuid.uuid4().hex[:6]}")

    async def too_big() -> AsyncIterator[bytes]:
        for _ in range(LIMIT // 1024 + 10):
            yield b"x" * 1024

    r = await gateway.post(
        "/datasets", params={"name": "big"}, content=too_big(), headers={**alice, "Content-Type": "text/csv"}
    )
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "payload_too_large"
    assert (await gateway.post("/datasets", content=b"a\n1\n", headers=alice)).status_code == 422  # no name
    assert (
        await gateway.post("/datasets", params={"name": "x", "bogus": "1"}, content=b"a\n1\n", headers=alice)
    ).status_code == 422
    assert (await gateway.get("/datasets/not-an-id", headers=alice)).status_code == 422
    assert (await gateway.get("/datasets")).status_code == 401
    bad = await gateway.post("/datasets", params={"name": "bad.csv"}, content=b"a,b\n1\n", headers=alice)
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_dataset"
    assert bad.json()["error"]["details"]["line"] == 2
