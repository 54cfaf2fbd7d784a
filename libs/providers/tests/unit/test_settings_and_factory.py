"""Settings parsing and factory provider selection (no network: providers are built but never called)."""

from __future__ import annotations

import pytest

from llmts_providers import OllamaProvider, OpenRouterProvider, ProviderFactory, ProviderSettings

pytestmark = pytest.mark.unit


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-v1-secret")
    monkeypatch.setenv("OPENROUTER_BASE_URL", "http://127.0.0.1:18080/api/v1")
    monkeypatch.setenv("PROVIDER_FALLBACK_ORDER", "ollama, openrouter")
    monkeypatch.setenv("PROVIDER_FALLBACK_MODELS", "ollama=llama3.2,openrouter=openai/gpt-4o-mini")
    monkeypatch.setenv("PROVIDER_TIMEOUT_SECONDS", "12.5")
    s = ProviderSettings()
    assert s.openrouter_base_url == "http://127.0.0.1:18080/api/v1"
    assert s.provider_fallback_order == ["ollama", "openrouter"]
    assert s.provider_fallback_models == {"ollama": "llama3.2", "openrouter": "openai/gpt-4o-mini"}
    assert s.provider_timeout_seconds == 12.5
    assert s.openrouter_api_key is not None
    assert "sk-or-v1-secret" not in repr(s)
    assert "sk-or-v1-secret" not in str(s.model_dump())


def test_settings_defaults_and_blank_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "OLLAMA_BASE_URL", "PROVIDER_FALLBACK_ORDER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENROUTER_API_KEY", "  ")
    s = ProviderSettings()
    assert s.openrouter_api_key is None
    assert s.openrouter_base_url == "https://openrouter.ai/api/v1"
    assert s.ollama_base_url == "http://127.0.0.1:11434"
    assert s.provider_fallback_order == []


def test_settings_reject_unknown_provider_in_order() -> None:
    with pytest.raises(ValueError, match="unknown provider"):
        ProviderSettings(provider_fallback_order="ollama,bedrock")  # type: ignore[arg-type]


async def test_for_model_selection() -> None:
    async def lookup(model_id: str) -> str | None:
        return {"llama3.2": "ollama", "openai/gpt-4o": "openrouter"}.get(model_id)

    factory = ProviderFactory(ProviderSettings(openrouter_api_key="k"), catalog_lookup=lookup)  # type: ignore[arg-type]
    try:
        p, m = await factory.for_model("ollama/qwen2.5:7b")
        assert isinstance(p, OllamaProvider)
        assert m == "qwen2.5:7b"
        p, m = await factory.for_model("llama3.2")
        assert isinstance(p, OllamaProvider)
        assert m == "llama3.2"
        p, m = await factory.for_model("openai/gpt-4o")
        assert isinstance(p, OpenRouterProvider)
        p, m = await factory.for_model("unknown/model:free")
        assert isinstance(p, OpenRouterProvider)
        assert m == "unknown/model:free"
        p, m = await factory.for_model("openrouter/auto")  # not a prefix to strip
        assert m == "openrouter/auto"
        p, m = await factory.for_model(
            "ollama/llama3.2", provider="openrouter"
        )  # explicit wins, id untouched
        assert isinstance(p, OpenRouterProvider)
        assert m == "ollama/llama3.2"
        p2, _ = await factory.for_model("x/y")
        assert p2 is p  # cached instances
        with pytest.raises(ValueError, match="unknown provider"):
            await factory.for_model("x", provider="bedrock")
    finally:
        await factory.aclose()


async def test_configured() -> None:
    f = ProviderFactory(ProviderSettings(openrouter_api_key=None))
    assert not f.configured("openrouter")
    assert f.configured("ollama")
    assert not f.configured("bedrock")
    g = ProviderFactory(ProviderSettings(openrouter_api_key="k"))  # type: ignore[arg-type]
    assert g.configured("openrouter")


async def test_fallback_chain_order_and_cooldown() -> None:
    settings = ProviderSettings(
        openrouter_api_key="k",  # type: ignore[arg-type]
        provider_fallback_order="ollama,openrouter",  # type: ignore[arg-type]
        provider_fallback_models="openrouter=openai/gpt-4o-mini,ollama=ollama/llama3.2",  # type: ignore[arg-type]
    )
    f = ProviderFactory(settings)
    assert f.fallback_chain("ollama", "qwen2.5:7b") == [
        ("ollama", "qwen2.5:7b"),
        ("openrouter", "openai/gpt-4o-mini"),
    ]
    assert f.fallback_chain("openrouter", "x/y") == [("openrouter", "x/y"), ("ollama", "llama3.2")]
    f.mark_down("openrouter", 60)
    assert f.fallback_chain("openrouter", "x/y") == [("ollama", "llama3.2"), ("openrouter", "x/y")]
    # no fallback model for a provider → it is not in the chain
    assert f.fallback_chain("ollama", "m", {"openrouter": "a/b"}) == [("ollama", "m"), ("openrouter", "a/b")]
    g = ProviderFactory(ProviderSettings(provider_fallback_order="ollama,openrouter"))  # type: ignore[arg-type]
    assert g.fallback_chain("ollama", "m", {"openrouter": "a/b"}) == [
        ("ollama", "m")
    ]  # openrouter not configured
