"""Filters, sorts and pagination over the ≥300-model fixture, normalised by the provider library (no I/O)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from llmts_catalog.domain.catalog import (
    ModelQuery,
    blended_price,
    find_model,
    matches,
    query_models,
    sort_models,
)
from llmts_providers.models import ModelRecord

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parents[4] / "tests" / "fakes" / "data"


@pytest.fixture(scope="module")
def records() -> list[ModelRecord]:
    openrouter = json.loads((DATA / "openrouter_models.json").read_text())["data"]
    ollama = json.loads((DATA / "ollama_tags.json").read_text())["models"]
    return [ModelRecord.from_openrouter(m) for m in openrouter] + [ModelRecord.from_ollama(t) for t in ollama]


def ids(page_items: list[ModelRecord]) -> list[str]:
    return [r.id for r in page_items]


def all_of(records: list[ModelRecord], **filters: object) -> list[ModelRecord]:
    page = query_models(records, ModelQuery(limit=500, **filters))  # type: ignore[arg-type]
    assert page.total <= 500
    return page.items


def test_fixture_is_big_enough(records: list[ModelRecord]) -> None:
    assert sum(r.provider == "openrouter" for r in records) >= 300
    assert any(r.provider == "ollama" for r in records)


def test_no_filter_selects_everything(records: list[ModelRecord]) -> None:
    assert query_models(records, ModelQuery(limit=1)).total == len(records)


@pytest.mark.parametrize("provider", ["openrouter", "ollama"])
def test_provider_filter(records: list[ModelRecord], provider: str) -> None:
    got = all_of(records, provider=provider)
    assert got
    assert all(r.provider == provider for r in got)
    assert len(got) == sum(r.provider == provider for r in records)


@pytest.mark.parametrize("flag", ["free", "online", "structured_output", "tools"])
@pytest.mark.parametrize("value", [True, False])
def test_boolean_filters(records: list[ModelRecord], flag: str, value: bool) -> None:
    got = all_of(records, **{flag: value})
    expected = {r.key for r in records if getattr(r, flag) == value}
    assert {r.key for r in got} == expected
    assert expected, f"the fixture has no model with {flag}={value}"


def test_free_means_free_suffix_or_zero_price(records: list[ModelRecord]) -> None:
    for r in all_of(records, free=True, provider="openrouter"):
        assert r.id.endswith(":free") or (r.pricing.prompt == 0 and r.pricing.completion == 0)
    assert any(r.id.endswith(":free") for r in records)


def test_free_and_structured_output_combined(records: list[ModelRecord]) -> None:
    got = all_of(records, free=True, structured_output=True, provider="openrouter")
    assert got
    assert all(r.free and r.structured_output for r in got)
    assert len(got) == sum(r.free and r.structured_output and r.provider == "openrouter" for r in records)


def test_min_context(records: list[ModelRecord]) -> None:
    got = all_of(records, min_context=200_000)
    assert got
    assert all((r.context_length or 0) >= 200_000 for r in got)
    assert len(got) == sum((r.context_length or 0) >= 200_000 for r in records)
    assert query_models(records, ModelQuery(min_context=10**9)).total == 0


@pytest.mark.parametrize("modality", ["image", "audio", "file", "embeddings"])
def test_modality_matches_input_or_output(records: list[ModelRecord], modality: str) -> None:
    got = query_models(records, ModelQuery(modality=modality, limit=500))
    expected = {r.key for r in records if modality in r.input_modalities or modality in r.output_modalities}
    assert {r.key for r in got.items} == expected


def test_input_and_output_modality(records: list[ModelRecord]) -> None:
    image_out = all_of(records, output_modality="image")
    assert image_out
    assert all("image" in r.output_modalities for r in image_out)
    image_in = all_of(records, input_modality="image")
    assert all("image" in r.input_modalities for r in image_in)
    assert len(image_in) > len(image_out)


def test_q_searches_id_name_description_case_insensitively(records: list[ModelRecord]) -> None:
    by_id = all_of(records, q="LLAMA-3.3")
    assert by_id
    assert all("llama-3.3" in f"{r.id} {r.name} {r.description}".lower() for r in by_id)
    target = next(r for r in records if r.provider == "openrouter" and r.description)
    word = max(target.description.split(), key=len).strip(".,")
    assert target.key in {r.key for r in all_of(records, q=word)}
    # every word must occur
    both = all_of(records, q="llama instruct")
    assert all("llama" in (t := f"{r.id} {r.name} {r.description}".lower()) and "instruct" in t for r in both)
    assert query_models(records, ModelQuery(q="no-such-model-anywhere")).total == 0


def _prices(items: list[ModelRecord]) -> list[Decimal]:
    return [p for p in (blended_price(r) for r in items) if p is not None]


def test_sort_by_price_both_ways_unknown_last(records: list[ModelRecord]) -> None:
    asc = sort_models(records, "price", "asc")
    desc = sort_models(records, "price", "desc")
    assert _prices(asc) == sorted(_prices(asc))
    assert _prices(desc) == sorted(_prices(desc), reverse=True)
    unknown = [r for r in records if blended_price(r) is None]
    assert unknown, "fixture should hold a variable-price router model"
    assert {r.key for r in asc[-len(unknown) :]} == {r.key for r in unknown}
    assert {r.key for r in desc[-len(unknown) :]} == {r.key for r in unknown}


def test_sort_by_context(records: list[ModelRecord]) -> None:
    asc = [r.context_length for r in sort_models(records, "context", "asc") if r.context_length is not None]
    desc = [r.context_length for r in sort_models(records, "context", "desc") if r.context_length is not None]
    assert asc == sorted(asc)
    assert desc == sorted(desc, reverse=True)


def test_sort_by_name(records: list[ModelRecord]) -> None:
    asc = [r.name.casefold() for r in sort_models(records, "name", "asc")]
    assert asc == sorted(asc)
    desc = [r.name.casefold() for r in sort_models(records, "name", "desc")]
    assert desc == sorted(desc, reverse=True)


def test_sort_by_created(records: list[ModelRecord]) -> None:
    got = sort_models(records, "created", "desc")
    stamps = [r.created for r in got if r.created is not None]
    assert stamps == sorted(stamps, reverse=True)


def test_sort_is_deterministic(records: list[ModelRecord]) -> None:
    shuffled = list(reversed(records))
    for key in ("price", "context", "name", "created"):
        assert ids(sort_models(records, key, "asc")) == ids(sort_models(shuffled, key, "asc"))  # type: ignore[arg-type]


def test_pagination_walks_every_model_once(records: list[ModelRecord]) -> None:
    seen: list[str] = []
    offset = 0
    while True:
        page = query_models(records, ModelQuery(sort="price", limit=37, offset=offset))
        assert page.total == len(records)
        assert page.limit == 37
        assert page.offset == offset
        if not page.items:
            break
        seen.extend(r.key for r in page.items)
        offset += 37
    assert len(seen) == len(set(seen)) == len(records)


def test_offset_past_the_end(records: list[ModelRecord]) -> None:
    page = query_models(records, ModelQuery(offset=10_000))
    assert page.total == len(records)
    assert page.items == []


@pytest.mark.parametrize(
    "bad",
    [
        {"limit": 0},
        {"limit": 501},
        {"offset": -1},
        {"min_context": -5},
        {"sort": "popularity"},
        {"order": "up"},
    ],
)
def test_invalid_query_is_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="validation error"):
        ModelQuery(**bad)  # type: ignore[arg-type]


def test_find_model_slash_colon_and_ollama_spellings(records: list[ModelRecord]) -> None:
    slash = next(r for r in records if "/" in r.id and r.id.endswith(":free"))
    assert find_model(records, slash.id) == slash
    assert find_model(records, "llama3.2") is not None
    assert find_model(records, "ollama/llama3.2:latest") == find_model(records, "llama3.2:latest")
    assert find_model(records, "llama3.2:latest", provider="openrouter") is None
    assert find_model(records, "nope/nothing") is None


def test_prices_are_per_million_decimals(records: list[ModelRecord]) -> None:
    r = next(
        m for m in records if m.provider == "openrouter" and m.raw["pricing"]["prompt"] not in ("0", "-1")
    )
    assert r.pricing.prompt == Decimal(r.raw["pricing"]["prompt"]) * 1_000_000
    assert matches(r, ModelQuery(provider="openrouter"))
