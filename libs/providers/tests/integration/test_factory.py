"""ProviderFactory selection and cross-provider fallback against both fakes."""

from __future__ import annotations

from typing import Any

import pytest
from tests.fakes.fixtures import OPENROUTER_TEST_KEY, FakeHandle

from llmts_providers import (
    ChatMessage,
    ChatRequest,
    OllamaProvider,
    OpenRouterProvider,
    ProviderFactory,
    ProviderSettings,
    ProviderUnavailable,
    RateLimited,
)


def _settings(fake_openrouter: FakeHandle, ollama_url: str, **kw: Any) -> ProviderSettings:
    return ProviderSettings(
        openrouter_base_url=fake_openrouter.base_url,
        openrouter_api_key=OPENROUTER_TEST_KEY,  # type: ignore[arg-type]
        ollama_base_url=ollama_url,
        provider_timeout_seconds=5,
        **kw,
    )


def _req(model: str) -> ChatRequest:
    return ChatRequest(model=model, messages=[ChatMessage(role="user", content="Say hi")])


async def test_selection_with_catalog_lookup(fake_openrouter: FakeHandle, fake_ollama: FakeHandle) -> None:
    calls: list[str] = []

    async def lookup(model_id: str) -> str | None:
        calls.append(model_id)
        return "ollama" if model_id == "qwen2.5:7b" else None

    factory = ProviderFactory(_settings(fake_openrouter, fake_ollama.base_url), catalog_lookup=lookup)
    try:
        provider, model = await factory.for_model("qwen2.5:7b")
        assert isinstance(provider, OllamaProvider)
        assert (await provider.chat(_req(model))).provider == "ollama"
        provider, model = await factory.for_model("openai/gpt-4o-mini")
        assert isinstance(provider, OpenRouterProvider)
        assert (await provider.chat(_req(model))).provider == "openrouter"
        provider, model = await factory.for_model("ollama/llama3.2")
        assert isinstance(provider, OllamaProvider)
        assert model == "llama3.2"
        assert calls == ["qwen2.5:7b", "openai/gpt-4o-mini"]  # prefix decided without lookup
    finally:
        await factory.aclose()


async def test_fallback_when_primary_unreachable(fake_openrouter: FakeHandle, unused_port_url: str) -> None:
    settings = _settings(
        fake_openrouter,
        unused_port_url,
        provider_fallback_order="ollama,openrouter",
        provider_fallback_models="openrouter=openai/gpt-4o-mini",
    )
    factory = ProviderFactory(settings)
    try:
        result = await factory.chat_with_fallback(_req("ollama/llama3.2"))
        assert result.provider == "openrouter"
        assert result.model == "openai/gpt-4o-mini"
        assert factory.is_marked_down("ollama")
        # while cooling down, ollama moves behind openrouter: no connect attempt first
        assert factory.fallback_chain("ollama", "llama3.2")[0][0] == "openrouter"
        assert fake_openrouter.stats()["calls"] == 1
    finally:
        await factory.aclose()


async def test_fallback_on_stopped_server_and_5xx(
    fake_openrouter: FakeHandle, fake_ollama: FakeHandle
) -> None:
    settings = _settings(
        fake_openrouter,
        fake_ollama.base_url,
        provider_fallback_order="openrouter,ollama",
        provider_fallback_models="ollama=llama3.2",
    )
    factory = ProviderFactory(settings)
    try:
        fake_openrouter.configure(script=[502])
        result = await factory.chat_with_fallback(_req("openai/gpt-4o-mini"))
        assert result.provider == "ollama"
        fake_openrouter.stop()  # connection refused from now on
        factory._down_until.clear()
        result = await factory.chat_with_fallback(_req("openai/gpt-4o-mini"))
        assert result.provider == "ollama"
    finally:
        await factory.aclose()


async def test_no_fallback_on_rate_limit(fake_openrouter: FakeHandle, fake_ollama: FakeHandle) -> None:
    settings = _settings(
        fake_openrouter,
        fake_ollama.base_url,
        provider_fallback_order="openrouter,ollama",
        provider_fallback_models="ollama=llama3.2",
    )
    factory = ProviderFactory(settings)
    try:
        fake_openrouter.configure(script=[429])
        with pytest.raises(RateLimited):
            await factory.chat_with_fallback(_req("openai/gpt-4o-mini"))
        assert fake_ollama.stats()["calls"] == 0
        fake_openrouter.configure(script=[429])
        result = await factory.chat_with_fallback(
            _req("openai/gpt-4o-mini"), fallback_on=(ProviderUnavailable, RateLimited)
        )
        assert result.provider == "ollama"
    finally:
        await factory.aclose()


async def test_all_unreachable_raises_last_error(
    fake_openrouter: FakeHandle, fake_ollama: FakeHandle
) -> None:
    settings = _settings(
        fake_openrouter,
        fake_ollama.base_url,
        provider_fallback_order="ollama,openrouter",
        provider_fallback_models="openrouter=openai/gpt-4o-mini",
    )
    factory = ProviderFactory(settings)
    try:
        fake_ollama.configure(down=True)
        fake_openrouter.configure(down=True)
        with pytest.raises(ProviderUnavailable) as info:
            await factory.chat_with_fallback(_req("ollama/llama3.2"))
        assert info.value.provider == "openrouter"
        assert fake_ollama.stats()["calls"] == 1
        assert fake_openrouter.stats()["calls"] == 1
    finally:
        await factory.aclose()


async def test_no_fallback_configured(fake_openrouter: FakeHandle, unused_port_url: str) -> None:
    factory = ProviderFactory(_settings(fake_openrouter, unused_port_url))
    try:
        with pytest.raises(ProviderUnavailable):
            await factory.chat_with_fallback(_req("ollama/llama3.2"))
        assert fake_openrouter.stats()["calls"] == 0
    finally:
        await factory.aclose()
