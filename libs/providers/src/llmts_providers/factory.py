"""Choose a provider for a model id, and fall back to another provider when one is unreachable."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from llmts_providers.base import Provider
from llmts_providers.errors import ProviderError, ProviderUnavailable
from llmts_providers.models import ChatRequest, ChatResult
from llmts_providers.ollama import PREFIX as OLLAMA_PREFIX
from llmts_providers.ollama import OllamaProvider, strip_ollama_prefix
from llmts_providers.openai_compatible import OpenAICompatibleProvider
from llmts_providers.openrouter import OpenRouterProvider
from llmts_providers.settings import KNOWN_PROVIDERS, ProviderSettings

__all__ = ["CatalogLookup", "ProviderFactory"]

log = logging.getLogger(__name__)

CatalogLookup = Callable[[str], Awaitable[str | None]]


class ProviderFactory:
    """Builds providers lazily from settings and picks one per model.

    Selection (``for_model``): explicit ``provider`` → ``ollama/`` prefix (stripped) → ``catalog_lookup(model_id)``
    → OpenRouter. Fallback (``chat_with_fallback``): see the package README.
    """

    def __init__(
        self,
        settings: ProviderSettings,
        catalog_lookup: CatalogLookup | None = None,
        *,
        providers: Mapping[str, Provider] | None = None,
    ) -> None:
        self.settings = settings
        self._lookup = catalog_lookup
        self._providers: dict[str, Provider] = dict(providers or {})
        self._injected = frozenset(self._providers)  # given ready-made: configured by definition
        self._down_until: dict[str, float] = {}

    # --- construction ---------------------------------------------------------------------------------
    def configured(self, name: str) -> bool:
        """OpenRouter needs an API key; Ollama needs a base URL (it has a default, so it is normally configured);
        an OpenAI-compatible server needs ``OPENAI_COMPATIBLE_BASE_URL`` (its key is optional: local servers)."""
        if name in self._injected:
            return True
        if name == "openrouter":
            return self.settings.openrouter_api_key is not None and bool(self.settings.openrouter_base_url)
        if name == "ollama":
            return bool(self.settings.ollama_base_url)
        if name == "openai-compatible":
            return bool(self.settings.openai_compatible_base_url)
        return False

    def get(self, name: str) -> Provider:
        """The (cached) provider instance by name, built on first use even if not ``configured``."""
        if name not in KNOWN_PROVIDERS and name not in self._providers:
            raise ValueError(f"unknown provider {name!r}; known: {', '.join(KNOWN_PROVIDERS)}")
        provider = self._providers.get(name)
        if provider is None:
            if name == "openrouter":
                provider = OpenRouterProvider.from_settings(self.settings)
            elif name == "openai-compatible":
                provider = OpenAICompatibleProvider.from_settings(self.settings)
            else:
                provider = OllamaProvider.from_settings(self.settings)
            self._providers[name] = provider
        return provider

    async def for_model(self, model_id: str, provider: str | None = None) -> tuple[Provider, str]:
        """Return ``(provider, model id as that provider expects it)``."""
        name = provider.lower() if provider else None
        if name is None:
            if model_id.startswith(OLLAMA_PREFIX):
                name = "ollama"
            elif self._lookup is not None:
                found = await self._lookup(model_id)
                name = found.lower() if found else None
        name = name or "openrouter"
        if name == "ollama":
            model_id = strip_ollama_prefix(model_id)
        return self.get(name), model_id

    # --- fallback -------------------------------------------------------------------------------------
    def mark_down(self, name: str, seconds: float | None = None) -> None:
        cooldown = self.settings.provider_fallback_cooldown_seconds if seconds is None else seconds
        self._down_until[name] = time.monotonic() + cooldown

    def is_marked_down(self, name: str) -> bool:
        return self._down_until.get(name, 0.0) > time.monotonic()

    def fallback_chain(
        self, primary: str, primary_model: str, fallback_models: Mapping[str, str] | None = None
    ) -> list[tuple[str, str]]:
        """``[(provider, model), …]`` to try: the primary first, then ``PROVIDER_FALLBACK_ORDER`` entries that are
        configured and have a model (argument first, then ``PROVIDER_FALLBACK_MODELS``). Providers inside their
        cool-down after being unreachable move to the end (they are still tried if nothing else answers)."""
        models = {**self.settings.provider_fallback_models, **(fallback_models or {})}
        chain = [(primary, primary_model)]
        for name in self.settings.provider_fallback_order:
            if name == primary or not self.configured(name) or name not in models:
                continue
            model = strip_ollama_prefix(models[name]) if name == "ollama" else models[name]
            chain.append((name, model))
        up = [c for c in chain if not self.is_marked_down(c[0])]
        down = [c for c in chain if self.is_marked_down(c[0])]
        return up + down

    async def chat_with_fallback(
        self,
        request: ChatRequest,
        provider: str | None = None,
        *,
        fallback_models: Mapping[str, str] | None = None,
        fallback_on: Sequence[type[ProviderError]] = (ProviderUnavailable,),
    ) -> ChatResult:
        """``chat`` on the selected provider; on an *unreachable* error, try the next provider in the chain.

        Only ``fallback_on`` errors (default: ``ProviderUnavailable`` — connect errors, timeouts, 5xx) move on;
        every other error (429, 402, 400, mid-stream…) is raised at once for the caller's retry policy.
        The result's ``provider``/``model`` say who answered. When all fail, the last error is raised.
        """
        primary, model = await self.for_model(request.model, provider)
        chain = self.fallback_chain(primary.name, model, fallback_models)
        last: ProviderError | None = None
        for name, chain_model in chain:
            try:
                result = await self.get(name).chat(request.model_copy(update={"model": chain_model}))
            except ProviderError as exc:
                if not isinstance(exc, tuple(fallback_on)):
                    raise
                self.mark_down(name)
                last = exc
                log.warning("provider %s unavailable (%s); trying next in fallback chain", name, exc.code)
                continue
            self._down_until.pop(name, None)
            return result
        assert last is not None
        raise last

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
        self._providers.clear()
