"""``configured`` reflects the settings, not whether a provider instance was already built."""

from __future__ import annotations

from llmts_providers.factory import ProviderFactory
from llmts_providers.settings import ProviderSettings


async def test_building_a_provider_does_not_make_it_configured() -> None:
    factory = ProviderFactory(ProviderSettings(openrouter_api_key=None))
    assert not factory.configured("openrouter")
    factory.get("openrouter")  # built on first use even without a key
    assert not factory.configured("openrouter")
    assert factory.configured("ollama")
    await factory.aclose()
