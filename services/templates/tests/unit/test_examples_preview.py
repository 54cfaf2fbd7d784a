"""Every shipped example validates and previews; preview estimates; the catalog price client."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from llmts_api.templates import ModelSpec
from llmts_common.errors import Unprocessable
from llmts_providers.estimate import estimate_prompt_tokens
from llmts_providers.models import SCHEMA_INSTRUCTION_MARKER
from llmts_providers.settings import ProviderSettings
from llmts_templates.adapters.catalog import CatalogPriceClient, price_from_record
from llmts_templates.adapters.provider_body import ProviderRequestBuilder
from llmts_templates.checks import validate_document
from llmts_templates.domain.document import TemplateDocument
from llmts_templates.domain.examples import load_examples
from llmts_templates.preview import PreviewRequest, preview, resolve_task
from llmts_templating.pool import RenderPool

EXAMPLES = load_examples()
NOW = datetime(2026, 11, 28, tzinfo=UTC)


@pytest.fixture
async def bodies() -> Any:
    b = ProviderRequestBuilder()
    yield b
    await b.aclose()


async def run(doc: TemplateDocument, bodies: Any, prices: Any, **req: Any) -> dict[str, Any]:
    return await preview(
        doc,
        PreviewRequest(template={}, **req),
        renderer=RenderPool(workers=1, isolation="thread"),
        bodies=bodies,
        prices=prices,
        now=NOW,
        default_model="openrouter/auto",
        default_max_tokens=1024,
        authorization="Bearer t",
    )


def test_the_required_examples_ship() -> None:
    assert {"quiz", "articles", "data-analyzer", "product-catalog", "support-tickets"} <= set(EXAMPLES)


@pytest.mark.parametrize("example_id", sorted(EXAMPLES))
async def test_example_validates_and_previews(example_id: str, bodies: Any, prices: Any) -> None:
    doc = EXAMPLES[example_id].document
    report = validate_document(doc)
    assert report.valid, report.errors
    assert not report.warnings, report.warnings
    out = await run(doc, bodies, prices, count=10)
    assert out["rendered"]["user"]
    assert "{{" not in out["rendered"]["user"]
    body = out["request_body"]
    assert body["response_format"]["json_schema"]["schema"] == doc.json_schema
    assert out["cost_estimate"]["total"]["high"] >= out["cost_estimate"]["total"]["low"] > 0


async def test_preview_body_tokens_and_cost(bodies: Any, prices: Any) -> None:
    doc = EXAMPLES["quiz"].document
    out = await run(doc, bodies, prices, index=6, count=100, variables={"audience": "kids"})
    assert out["task"] == doc.tasks[1]
    assert out["task_index"] == 1
    assert "world history" in out["rendered"]["user"]
    assert "kids" in out["rendered"]["user"]
    body = out["request_body"]
    assert body["model"] == "openai/gpt-4o-mini"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["temperature"] == 0.7
    assert body["max_tokens"] == 600
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    tokens = out["token_estimate"]
    assert tokens["method"] == "chars/4"
    assert tokens["prompt_tokens"] == estimate_prompt_tokens(body)
    cost = out["cost_estimate"]
    low = Decimal(tokens["prompt_tokens"]) * Decimal("0.15") / 1_000_000
    high = low + Decimal(600) * Decimal("0.60") / 1_000_000
    assert cost["per_item"]["low"] == pytest.approx(float(low))
    assert cost["per_item"]["high"] == pytest.approx(float(high))
    assert cost["total"]["high"] == pytest.approx(float(high * 100))
    assert prices.calls == [("openai/gpt-4o-mini", "Bearer t")]


async def test_preview_model_override_and_ollama(bodies: Any, prices: Any) -> None:
    out = await run(EXAMPLES["articles"].document, bodies, prices, model="ollama/llama3.2")
    assert out["provider"] == "ollama"
    assert out["request_body"]["model"] == "llama3.2"
    assert out["request_body"]["format"] == EXAMPLES["articles"].document.json_schema
    assert out["cost_estimate"] is None


async def test_render_error_is_422_with_details(bodies: Any, prices: Any) -> None:
    doc = TemplateDocument.model_validate(
        {"name": "x", "output": {"format": "text"}, "prompts": {"user": "Hi {{ who }}"}}
    )
    with pytest.raises(Unprocessable) as exc:
        await run(doc, bodies, prices)
    assert exc.value.code == "render_error"
    assert exc.value.details["kind"] == "undefined_variable"
    assert exc.value.details["variable"] == "who"
    out = await run(doc, bodies, prices, variables={"who": "there"})
    assert out["rendered"]["user"] == "Hi there"
    assert "response_format" not in out["request_body"]


async def test_catalog_down_gives_null_estimate_with_note(bodies: Any) -> None:
    client = CatalogPriceClient("http://127.0.0.1:9", timeout=0.5)
    try:
        out = await run(EXAMPLES["quiz"].document, bodies, client, count=5)
    finally:
        await client.aclose()
    assert out["cost_estimate"] is None
    assert any("catalog unavailable" in n for n in out["notes"])


def test_resolve_task_walks_counts() -> None:
    doc = EXAMPLES["support-tickets"].document  # counts 3, 3, 2
    assert resolve_task(doc, PreviewRequest(template={}, index=0))[1] == 0
    task, ti = resolve_task(doc, PreviewRequest(template={}, index=7))
    assert task == doc.tasks[2]
    assert ti == 1
    with pytest.raises(Unprocessable):
        resolve_task(doc, PreviewRequest(template={}, index=8))
    assert resolve_task(doc, PreviewRequest(template={}, task=1, index=4)) == (doc.tasks[1], 4)
    with pytest.raises(Unprocessable):
        resolve_task(doc, PreviewRequest(template={}, task=5))


async def test_catalog_client_parses_the_record_and_caches() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if "missing" in request.url.path:
            return httpx.Response(404, json={"error": {"code": "not_found"}})
        record = {
            "id": "meta-llama/llama-3.3-70b-instruct:free",
            "pricing": {"prompt": "0", "completion": "0"},
        }
        return httpx.Response(200, content=json.dumps(record))

    http = httpx.AsyncClient(base_url="http://catalog", transport=httpx.MockTransport(handler))
    client = CatalogPriceClient("http://catalog", http=http)
    first = await client.price("meta-llama/llama-3.3-70b-instruct:free", authorization=None)
    again = await client.price("meta-llama/llama-3.3-70b-instruct:free", authorization=None)
    assert first.price is not None
    assert first.price.prompt_per_million == 0
    assert again.price == first.price
    assert seen == ["/providers/models/meta-llama/llama-3.3-70b-instruct:free"]
    missing = await client.price("missing/model", authorization=None)
    assert missing.price is None
    assert "not in the catalog" in missing.notes[0]
    await client.aclose()


def test_price_from_record_variants() -> None:
    p = price_from_record("m", {"pricing": {"prompt": 0.5, "completion": "-1", "request": "0.001"}})
    assert p is not None
    assert p.prompt_per_million == Decimal("0.5")
    assert p.completion_per_million is None
    assert price_from_record("m", {"id": "m"}) is None


async def test_preview_body_for_an_openai_compatible_server(prices: Any) -> None:
    """The body follows OPENAI_COMPATIBLE_* (here: json_object for that model, max_completion_tokens)."""
    settings = ProviderSettings(
        openai_compatible_structured_output_models={"local-llama": "json_object"},
        openai_compatible_max_tokens_param="max_completion_tokens",
    )
    builder = ProviderRequestBuilder(settings)
    model = ModelSpec(provider="openai-compatible", id="local-llama", max_tokens=300)
    try:
        out = await run(EXAMPLES["quiz"].document, builder, prices, model=model)
    finally:
        await builder.aclose()
    assert out["provider"] == "openai-compatible"
    body = out["request_body"]
    assert body["model"] == "local-llama"
    assert body["response_format"] == {"type": "json_object"}
    assert SCHEMA_INSTRUCTION_MARKER in body["messages"][0]["content"]
    assert body["max_completion_tokens"] == 300
    assert "usage" not in body
