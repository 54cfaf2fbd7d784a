"""The catalog service over HTTP against the fake OpenRouter and Ollama: filters, sorts, pages, slash ids, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from tests.fakes import ollama as fake_ollama_app
from tests.fakes import openrouter as fake_openrouter_app
from tests.fakes.fixtures import FakeHandle
from tests.support.internal import internal_headers
from tests.support.names import unique_db

from llmts_catalog.bootstrap import bootstrap
from llmts_common.mongo import create_client
from llmts_providers.models import ModelRecord

from .conftest import MONGO_URL, catalog_settings


def expected_records() -> list[ModelRecord]:
    """What the fakes serve, normalised independently of the service (text-output OpenRouter models)."""
    openrouter = [
        ModelRecord.from_openrouter(m)
        for m in fake_openrouter_app.load_catalog()
        if "text" in m["architecture"]["output_modalities"]
    ]
    ollama = [
        ModelRecord.from_ollama(t, fake_ollama_app.show_payload(t)) for t in fake_ollama_app.load_tags()
    ]
    return openrouter + ollama


EXPECTED = expected_records()


@pytest.fixture(scope="module")
async def api(
    fake_openrouter_server: FakeHandle, fake_ollama_server: FakeHandle
) -> AsyncIterator[httpx.AsyncClient]:
    """One synced catalog for the read-only tests of this module (its own database, dropped after)."""
    fake_openrouter_server.ensure_running()
    fake_openrouter_server.reset()
    fake_ollama_server.ensure_running()
    fake_ollama_server.reset()
    db = unique_db("catalog")
    app, _runtime, _catalog = bootstrap(
        catalog_settings(db, fake_openrouter_server.base_url, fake_ollama_server.base_url)
    )
    try:
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://catalog") as c,
        ):
            resp = await c.post("/providers/sync", json={}, headers=internal_headers())
            assert resp.status_code == 200, resp.text
            assert all(i["ok"] for i in resp.json()["items"]), resp.text
            yield c
    finally:
        client = create_client(MONGO_URL)
        await client.drop_database(db)
        await client.close()


async def fetch_all(api: httpx.AsyncClient, **params: Any) -> tuple[int, list[dict[str, Any]]]:
    items: list[dict[str, Any]] = []
    offset = 0
    total = -1
    while True:
        resp = await api.get("/providers/models", params={**params, "limit": 200, "offset": offset})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        total = body["total"]
        items.extend(body["items"])
        offset += 200
        if offset >= total:
            return total, items


def keys(items: list[dict[str, Any]]) -> set[str]:
    return {f"{i['provider']}:{i['id']}" for i in items}


async def test_the_whole_catalog_is_served(api: httpx.AsyncClient) -> None:
    total, items = await fetch_all(api)
    assert total == len(EXPECTED) == len(items) >= 300
    assert keys(items) == {r.key for r in EXPECTED}


@pytest.mark.parametrize(
    ("params", "predicate"),
    [
        ({"provider": "openrouter"}, lambda r: r.provider == "openrouter"),
        ({"provider": "ollama"}, lambda r: r.provider == "ollama"),
        ({"free": "true"}, lambda r: r.free),
        ({"free": "false"}, lambda r: not r.free),
        ({"online": "true"}, lambda r: r.online),
        ({"structured_output": "true"}, lambda r: r.structured_output),
        ({"structured_output": "false"}, lambda r: not r.structured_output),
        ({"tools": "true"}, lambda r: r.tools),
        ({"min_context": "128000"}, lambda r: (r.context_length or 0) >= 128_000),
        ({"modality": "image"}, lambda r: "image" in r.input_modalities or "image" in r.output_modalities),
        ({"modality": "audio"}, lambda r: "audio" in r.input_modalities or "audio" in r.output_modalities),
        ({"input_modality": "file"}, lambda r: "file" in r.input_modalities),
        ({"q": "Llama"}, lambda r: "llama" in f"{r.id} {r.name} {r.description}".lower()),
        (
            {"q": "qwen coder"},
            lambda r: all(w in f"{r.id} {r.name} {r.description}".lower() for w in ("qwen", "coder")),
        ),
        (
            {"free": "true", "structured_output": "true", "provider": "openrouter"},
            lambda r: r.free and r.structured_output and r.provider == "openrouter",
        ),
        (
            {"online": "false", "tools": "true", "min_context": "32000"},
            lambda r: not r.online and r.tools and (r.context_length or 0) >= 32_000,
        ),
    ],
)
async def test_every_filter(api: httpx.AsyncClient, params: dict[str, str], predicate: Any) -> None:
    total, items = await fetch_all(api, **params)
    expected = {r.key for r in EXPECTED if predicate(r)}
    assert expected, f"fixture has nothing for {params}"
    assert keys(items) == expected
    assert total == len(expected)


async def test_free_structured_models_carry_prices_per_million(api: httpx.AsyncClient) -> None:
    _, items = await fetch_all(api, free="true", structured_output="true")
    assert items
    for item in items:
        assert item["free"]
        assert item["structured_output"]
        assert Decimal(item["pricing"]["prompt"]) == 0 or item["id"].endswith(":free")
    _, paid = await fetch_all(api, provider="openrouter", free="false")
    sample = next(i for i in paid if i["raw"]["pricing"]["prompt"] not in ("0", "-1"))
    assert Decimal(sample["pricing"]["prompt"]) == Decimal(sample["raw"]["pricing"]["prompt"]) * 1_000_000
    assert isinstance(sample["pricing"]["completion"], str)  # exact decimal, not a float


def _price(item: dict[str, Any]) -> Decimal | None:
    p, c = item["pricing"]["prompt"], item["pricing"]["completion"]
    return None if p is None or c is None else Decimal(p) + Decimal(c)


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize(
    ("sort", "value"),
    [
        ("price", _price),
        ("context", lambda i: i["context_length"]),
        ("name", lambda i: i["name"].casefold()),
        ("created", lambda i: i["created"]),
    ],
)
async def test_every_sort(api: httpx.AsyncClient, sort: str, order: str, value: Any) -> None:
    _, items = await fetch_all(api, sort=sort, order=order)
    values = [value(i) for i in items]
    known = [v for v in values if v is not None]
    assert known == sorted(known, reverse=order == "desc")
    first_unknown = next((n for n, v in enumerate(values) if v is None), len(values))
    assert all(v is None for v in values[first_unknown:]), "unknown values sort last"


async def test_pagination_and_total(api: httpx.AsyncClient) -> None:
    first = (await api.get("/providers/models", params={"sort": "price", "limit": 10})).json()
    second = (await api.get("/providers/models", params={"sort": "price", "limit": 10, "offset": 10})).json()
    assert first["total"] == second["total"] == len(EXPECTED)
    assert (first["limit"], first["offset"], second["offset"]) == (10, 0, 10)
    assert len(first["items"]) == len(second["items"]) == 10
    assert not keys(first["items"]) & keys(second["items"])
    past = (await api.get("/providers/models", params={"offset": 100_000})).json()
    assert past["items"] == []
    assert past["total"] == len(EXPECTED)


async def test_default_is_verbose_and_compact_is_available(api: httpx.AsyncClient) -> None:
    verbose = (await api.get("/providers/models", params={"limit": 1, "provider": "openrouter"})).json()[
        "items"
    ][0]
    assert {"description", "supported_parameters", "raw", "pricing", "stale", "last_synced_at"} <= set(
        verbose
    )
    compact = (
        await api.get("/providers/models", params={"limit": 1, "provider": "openrouter", "verbose": "false"})
    ).json()["items"][0]
    assert "raw" not in compact
    assert "description" not in compact
    assert "pricing" in compact


@pytest.mark.parametrize(
    "model_id",
    [
        "openai/gpt-4o-mini",
        "meta-llama/llama-3.3-70b-instruct:free",
        "openrouter/auto",
    ],
)
async def test_slash_and_colon_ids_route(api: httpx.AsyncClient, model_id: str) -> None:
    assert any(r.id == model_id for r in EXPECTED), "fixture lacks the id"
    resp = await api.get(f"/providers/models/{model_id}")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["id"] == model_id
    assert body["provider"] == "openrouter"
    encoded = await api.get("/providers/models/" + model_id.replace("/", "%2F").replace(":", "%3A"))
    assert encoded.status_code == 200
    assert encoded.json()["id"] == model_id


async def test_router_model_has_unknown_price(api: httpx.AsyncClient) -> None:
    body = (await api.get("/providers/models/openrouter/auto")).json()
    assert body["pricing"]["prompt"] is None
    assert body["pricing"]["completion"] is None


async def test_ollama_ids(api: httpx.AsyncClient) -> None:
    for spelled in ("llama3.2:latest", "llama3.2", "ollama/llama3.2:latest"):
        resp = await api.get(f"/providers/models/{spelled}")
        assert resp.status_code == 200, spelled
        assert resp.json()["id"] == "llama3.2:latest"
        assert resp.json()["provider"] == "ollama"
        assert resp.json()["pricing"]["prompt"] == "0"


async def test_unknown_model_is_404_with_the_error_body(api: httpx.AsyncClient) -> None:
    resp = await api.get("/providers/models/acme/does-not-exist:free")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "model_not_found"
    assert "acme/does-not-exist:free" in resp.json()["error"]["message"]
    wrong_provider = await api.get("/providers/models/openai/gpt-4o-mini", params={"provider": "ollama"})
    assert wrong_provider.status_code == 404


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "501"},
        {"offset": "-1"},
        {"sort": "popularity"},
        {"order": "sideways"},
        {"free": "maybe"},
        {"provider": "azure"},
        {"min_context": "-5"},
        {"min_context": "lots"},
        {"modality": "IMAGE;drop"},
        {"q": ""},
        {"q": "x" * 201},
    ],
)
async def test_invalid_params_are_422_with_the_error_body(
    api: httpx.AsyncClient, params: dict[str, str]
) -> None:
    resp = await api.get("/providers/models", params=params)
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "validation_error"
    assert next(iter(params)) in error["message"]


async def test_providers_listing(api: httpx.AsyncClient) -> None:
    body = (await api.get("/providers")).json()
    by_name = {p["name"]: p for p in body["items"]}
    assert set(by_name) == {"openrouter", "ollama", "openai-compatible"}
    unused = by_name.pop(
        "openai-compatible"
    )  # no OPENAI_COMPATIBLE_BASE_URL here: listed, neither synced nor set
    assert (unused["status"], unused["enabled"], unused["configured"]) == ("disabled", False, False)
    for p in by_name.values():
        assert p["status"] == "ok"
        assert not p["stale"]
        assert p["configured"]
        assert p["enabled"]
        assert p["last_synced_at"]
        assert p["last_error"] is None
    assert by_name["openrouter"]["model_count"] == sum(r.provider == "openrouter" for r in EXPECTED)
    assert by_name["ollama"]["model_count"] == sum(r.provider == "ollama" for r in EXPECTED)


async def test_openapi_documents_the_routes(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/openapi.json")).json()["paths"]
    assert {"/providers", "/providers/models", "/providers/models/{model_id}", "/providers/test"} <= set(
        paths
    )


async def test_unknown_query_parameters_are_refused(api: httpx.AsyncClient) -> None:
    resp = await api.get("/providers/models", params={"paid": "true", "provider": "ollama"})
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert error["code"] == "validation_error"
    assert [(d["loc"], d["type"]) for d in error["details"]] == [(["query", "paid"], "extra_forbidden")]
    one = await api.get("/providers/models/openai/gpt-4o-mini", params={"verbose": "true", "x": "1"})
    assert one.status_code == 422
    assert [d["loc"] for d in one.json()["error"]["details"]] == [["query", "x"]]
    assert (await api.get("/providers/models", params={"provider": "ollama"})).status_code == 200
