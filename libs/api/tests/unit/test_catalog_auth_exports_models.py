"""Catalog, auth and export contracts: query models parse query strings and refuse bad values; bodies are closed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from llmts_api.auth import LoginRequest, OAuthCallbackQuery, RefreshRequest, UserCreate
from llmts_api.catalog import MAX_LIMIT, ModelPricingPublic, ModelPublic, ModelsQuery, ProviderTestRequest
from llmts_api.errors import ErrorBody
from llmts_api.exports import ExportCreate, ExportsQuery


def test_models_query_parses_query_strings_into_typed_filters() -> None:
    q = ModelsQuery.model_validate(
        {"free": "true", "tools": "0", "min_context": "32000", "sort": "price", "order": "desc", "q": "llama"}
    )
    assert (q.free, q.tools, q.min_context, q.sort, q.order) == (True, False, 32000, "price", "desc")
    assert (q.limit, q.offset, q.verbose) == (50, 0, True)


@pytest.mark.parametrize(
    "bad",
    [
        {"sort": "popularity"},
        {"order": "up"},
        {"provider": "openai"},
        {"limit": MAX_LIMIT + 1},
        {"limit": 0},
        {"offset": -1},
        {"modality": "Image"},
        {"input_modality": "1text"},
        {"q": ""},
        {"q": "x" * 201},
        {"min_context": -5},
        {"free": "maybe"},
    ],
)
def test_models_query_refuses_bad_values(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ModelsQuery.model_validate(bad)


def test_model_answer_requires_the_sync_time_and_every_price_even_when_null() -> None:
    pricing = {"prompt": "0.15", "completion": "0.6", "request": None, "web_search": None}
    model = {
        "id": "openai/gpt-4o-mini",
        "provider": "openrouter",
        "name": "GPT-4o mini",
        "input_modalities": ["text"],
        "output_modalities": ["text"],
        "pricing": pricing,
        "free": False,
        "online": False,
        "structured_output": True,
        "tools": True,
        "stale": False,
        "last_synced_at": None,
    }
    parsed = ModelPublic.model_validate(model)
    assert parsed.pricing.prompt == Decimal("0.15")
    assert parsed.model_dump(mode="json")["pricing"]["completion"] == "0.6"
    with pytest.raises(ValidationError):
        ModelPublic.model_validate({k: v for k, v in model.items() if k != "last_synced_at"})
    with pytest.raises(ValidationError):
        ModelPricingPublic.model_validate({"prompt": "1", "completion": "1"})


def test_provider_test_body_names_a_known_provider_and_nothing_else() -> None:
    assert ProviderTestRequest.model_validate({"provider": "ollama"}).provider == "ollama"
    with pytest.raises(ValidationError):
        ProviderTestRequest.model_validate({"provider": "anthropic"})
    with pytest.raises(ValidationError):
        ProviderTestRequest.model_validate({"provider": "ollama", "key": "sk-x"})


def test_auth_bodies_are_closed_and_bounded() -> None:
    with pytest.raises(ValidationError) as exc:
        UserCreate.model_validate({"email": "a@example.com", "password": "p" * 12, "is_admin": True})
    assert exc.value.errors()[0]["type"] == "extra_forbidden"
    with pytest.raises(ValidationError):
        LoginRequest.model_validate({"email": "a" * 321, "password": "x"})
    with pytest.raises(ValidationError):
        RefreshRequest.model_validate({"refresh_token": ""})
    with pytest.raises(ValidationError):
        OAuthCallbackQuery.model_validate({"state": "s" * 513})
    assert OAuthCallbackQuery.model_validate({"code": "c", "state": "s"}).error is None


def test_export_formats_and_options_are_checked() -> None:
    created = ExportCreate.model_validate(
        {"job_id": "j1", "format": "csv", "options": {"csv_delimiter": ";"}}
    )
    assert created.options.csv_delimiter == ";"
    for bad in (
        {"job_id": "j1", "format": "docx"},
        {"job_id": "j1", "options": {"csv_delimiter": ";;"}},
        {"job_id": "j1", "options": {"compress": True}},
        {"job_id": ""},
    ):
        with pytest.raises(ValidationError):
            ExportCreate.model_validate(bad)
    assert ExportsQuery.model_validate({"limit": "500"}).limit == 500
    with pytest.raises(ValidationError):
        ExportsQuery.model_validate({"format": "docx"})


def test_error_body_shape() -> None:
    body = ErrorBody.model_validate({"error": {"code": "not_found", "message": "gone"}})
    assert body.model_dump() == {
        "error": {"code": "not_found", "message": "gone", "details": None, "correlation_id": None}
    }
