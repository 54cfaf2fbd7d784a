"""The catalog with an OpenAI-compatible server (the fake, speaking the OpenAI dialect) next to OpenRouter and
Ollama: synced from its /v1/models, listed and looked up with provider ``openai-compatible``, prices from
OPENAI_COMPATIBLE_PRICES, connection tests, a server that goes down keeps its last good copy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.fakes import openai_compat
from tests.fakes.fixtures import (  # noqa: F401  (fixtures re-exported for pytest)
    FakeHandle,
    fake_openai_compat,
    fake_openai_compat_server,
)

from .conftest import RunningCatalog, StartCatalog

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
PRICES = {MODEL: {"prompt": "0.2", "completion": "0.8"}}


@pytest.fixture
async def with_compat(
    start_catalog: StartCatalog,
    fake_openai_compat: FakeHandle,  # noqa: F811  (the fixture imported above)
) -> AsyncIterator[RunningCatalog]:
    async with start_catalog(
        catalog_providers=["openrouter", "ollama", "openai-compatible"],
        openai_compatible_base_url=fake_openai_compat.base_url,
        openai_compatible_prices=PRICES,
        openai_compatible_structured_output_models={"qwen2.5-7b-instruct": "json_object"},
    ) as svc:
        results = {r["provider"]: r for r in await svc.sync()}
        assert all(r["ok"] for r in results.values()), results
        assert results["openai-compatible"]["total"] == len(openai_compat.MODELS)
        yield svc


async def states(svc: RunningCatalog) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in (await svc.client.get("/providers")).json()["items"]}


async def test_models_are_synced_and_listed_under_their_provider(with_compat: RunningCatalog) -> None:
    resp = await with_compat.client.get("/providers/models", params={"provider": "openai-compatible"})
    assert resp.status_code == 200, resp.text
    items = {m["id"]: m for m in resp.json()["items"]}
    assert set(items) == {m["id"] for m in openai_compat.MODELS}
    llama = items[MODEL]
    assert llama["provider"] == "openai-compatible"
    assert llama["pricing"] == {"prompt": "0.2", "completion": "0.8", "request": None, "web_search": None}
    assert llama["context_length"] == 8192
    assert llama["structured_output"] is True
    assert items["gpt-4o-mini"]["pricing"]["prompt"] is None  # unknown, not free
    assert items["gpt-4o-mini"]["free"] is False
    assert items["qwen2.5-7b-instruct"]["structured_output"] is False  # json_object mode for that model
    state = (await states(with_compat))["openai-compatible"]
    assert (state["status"], state["enabled"], state["configured"]) == ("ok", True, True)
    assert state["model_count"] == len(openai_compat.MODELS)


async def test_lookup_by_id_with_and_without_provider(with_compat: RunningCatalog) -> None:
    one = await with_compat.client.get(f"/providers/models/{MODEL}")
    assert one.status_code == 200, one.text
    assert one.json()["provider"] == "openai-compatible"
    again = await with_compat.client.get(
        f"/providers/models/{MODEL}", params={"provider": "openai-compatible"}
    )
    assert again.json()["id"] == MODEL
    elsewhere = await with_compat.client.get(f"/providers/models/{MODEL}", params={"provider": "openrouter"})
    assert elsewhere.status_code == 404


async def test_connection_test_and_a_server_that_goes_down(
    with_compat: RunningCatalog,
    fake_openai_compat: FakeHandle,  # noqa: F811
) -> None:
    body = (await with_compat.client.post("/providers/test", json={"provider": "openai-compatible"})).json()
    assert (body["reachable"], body["configured"]) == (True, True)
    assert body["key_valid"] is None  # no key configured: not determined
    fake_openai_compat.stop()
    down = (await with_compat.client.post("/providers/test", json={"provider": "openai-compatible"})).json()
    assert down["reachable"] is False
    (result,) = await with_compat.sync("openai-compatible")
    assert not result["ok"]
    state = (await states(with_compat))["openai-compatible"]
    assert state["status"] == "stale"
    assert state["model_count"] == len(openai_compat.MODELS)  # the last good copy stays
