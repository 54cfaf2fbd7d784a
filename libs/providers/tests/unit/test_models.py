"""Catalog normalisation: price per 1M, free/online/structured flags, storage round trip (no I/O)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from llmts_providers.models import ModelRecord, per_million

pytestmark = pytest.mark.unit

FIXTURE = Path(__file__).resolve().parents[4] / "tests" / "fakes" / "data" / "openrouter_models.json"
OLLAMA_FIXTURE = FIXTURE.with_name("ollama_tags.json")


@pytest.fixture(scope="module")
def catalog() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(FIXTURE.read_text())["data"]
    return data


@pytest.mark.parametrize(
    ("per_token", "expected"),
    [
        ("0.00000015", Decimal("0.15")),
        ("0.0000006", Decimal("0.6")),
        ("0.000015", Decimal("15")),
        ("0.00000002", Decimal("0.02")),
        ("0.000000075", Decimal("0.075")),
        ("0", Decimal("0")),
        ("1e-7", Decimal("0.1")),
    ],
)
def test_price_per_million_is_exact(per_token: str, expected: Decimal) -> None:
    got = per_million(per_token)
    assert got == expected
    assert str(got) == str(expected)  # no float noise, no exponent


@pytest.mark.parametrize("value", ["-1", None, "", "abc", "NaN"])
def test_unknown_price_is_none(value: Any) -> None:
    assert per_million(value) is None


def test_fixture_is_realistic(catalog: list[dict[str, Any]]) -> None:
    ids = [m["id"] for m in catalog]
    assert len(ids) >= 300
    assert len(set(ids)) == len(ids)
    assert "openai/gpt-4o-mini" in ids
    assert "meta-llama/llama-3.3-70b-instruct:free" in ids
    assert all("/" in i for i in ids)


def test_every_fixture_entry_normalises(catalog: list[dict[str, Any]]) -> None:
    for raw in catalog:
        rec = ModelRecord.from_openrouter(raw)
        params = set(raw["supported_parameters"])
        pricing = raw["pricing"]
        assert rec.provider == "openrouter"
        assert rec.id == raw["id"]
        zero = (
            pricing["prompt"] == "0" and pricing["completion"] == "0" and pricing.get("request", "0") == "0"
        )
        assert rec.free == (raw["id"].endswith(":free") or zero), raw["id"]
        web = Decimal(pricing.get("web_search", "0")) > 0
        assert rec.online == (web or "web_search_options" in params), raw["id"]
        assert rec.structured_output == bool({"response_format", "structured_outputs"} & params)
        assert rec.tools == ("tools" in params)
        assert rec.created == datetime.fromtimestamp(raw["created"], tz=UTC)
        assert rec.input_modalities == raw["architecture"]["input_modalities"]
        assert rec.raw == raw


def test_flags_on_specific_entries(catalog: list[dict[str, Any]]) -> None:
    by_id = {m["id"]: ModelRecord.from_openrouter(m) for m in catalog}
    free = by_id["meta-llama/llama-3.3-70b-instruct:free"]
    assert free.free
    assert free.pricing.prompt == 0
    paid = by_id["openai/gpt-4o-mini"]
    assert not paid.free
    assert paid.structured_output
    assert paid.pricing.prompt is not None
    assert paid.pricing.prompt > 0
    sonar = by_id["perplexity/sonar"]
    assert sonar.online
    assert sonar.pricing.web_search is not None
    auto = by_id["openrouter/auto"]
    assert auto.pricing.prompt is None  # "-1" = variable price
    assert not auto.free
    # some models support neither response_format nor structured_outputs
    assert any(not r.structured_output for r in by_id.values())
    assert any(r.pricing.web_search and r.pricing.web_search > 0 for r in by_id.values())


def test_pricing_values_against_raw(catalog: list[dict[str, Any]]) -> None:
    raw = next(m for m in catalog if m["id"] == "openai/gpt-4o-mini")
    rec = ModelRecord.from_openrouter(raw)
    assert rec.pricing.prompt == Decimal(raw["pricing"]["prompt"]) * 1_000_000
    assert rec.pricing.completion == Decimal(raw["pricing"]["completion"]) * 1_000_000


def test_tolerates_minimal_model() -> None:
    rec = ModelRecord.from_openrouter({"id": "acme/tiny", "pricing": {"prompt": "0", "completion": "0"}})
    assert rec.name == "acme/tiny"
    assert rec.free
    assert rec.context_length is None
    assert rec.created is None
    assert rec.input_modalities == ["text"]
    assert not rec.structured_output


def test_document_round_trip(catalog: list[dict[str, Any]]) -> None:
    rec = ModelRecord.from_openrouter(catalog[0])
    doc = rec.to_document()
    assert isinstance(doc["raw"], str)
    assert doc["key"] == f"openrouter:{rec.id}"
    assert all(v is None or isinstance(v, str) for v in doc["pricing"].values())
    assert isinstance(doc["created"], datetime)
    doc["_id"] = "whatever"
    # BSON gives datetimes back naive
    doc["created"] = doc["created"].replace(tzinfo=None)
    back = ModelRecord.from_document(doc)
    assert back == rec


def test_ollama_record_from_tag_and_show() -> None:
    tag = json.loads(OLLAMA_FIXTURE.read_text())["models"][0]
    show = {
        "details": tag["details"],
        "model_info": {"general.architecture": "llama", "llama.context_length": 131072},
        "capabilities": ["completion", "tools"],
    }
    rec = ModelRecord.from_ollama(tag, show)
    assert rec.id == "llama3.2:latest"
    assert rec.provider == "ollama"
    assert rec.context_length == 131072
    assert rec.free
    assert rec.structured_output
    assert rec.tools
    assert rec.pricing.prompt == 0
    assert rec.created is not None
    assert rec.created.year == 2025
    assert "3.2B" in rec.description
    back = ModelRecord.from_document(rec.to_document())
    assert back == rec
