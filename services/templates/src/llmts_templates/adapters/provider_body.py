"""The exact request body a generation would send, built by the provider library itself."""

from __future__ import annotations

from typing import Any

from llmts_providers.models import ChatMessage, ChatRequest
from llmts_providers.ollama import OllamaProvider
from llmts_providers.openai_compatible import OpenAICompatibleProvider
from llmts_providers.openrouter import OpenRouterProvider
from llmts_providers.preview import structured_output as schema_and_strict
from llmts_providers.settings import KNOWN_PROVIDERS, ProviderSettings


def provider_for(model_id: str, provider: str | None) -> str:
    """Explicit provider, else an ``ollama/`` prefix means Ollama, else OpenRouter."""
    if provider in KNOWN_PROVIDERS:
        return provider
    return "ollama" if model_id.startswith("ollama/") else "openrouter"


class ProviderRequestBuilder:
    """The body each provider would send. ``settings`` matter to the OpenAI-compatible body (its structured
    output mode per model and its max-tokens field); the defaults are used without them."""

    def __init__(self, settings: ProviderSettings | None = None) -> None:
        # No I/O happens here: the clients inside connect lazily and are only closed at shutdown.
        self._openrouter = OpenRouterProvider(api_key=None)
        self._ollama = OllamaProvider()
        self._compatible = (
            OpenAICompatibleProvider.from_settings(settings)
            if settings is not None
            else OpenAICompatibleProvider(base_url=None)
        )

    async def aclose(self) -> None:
        await self._openrouter.aclose()
        await self._ollama.aclose()
        await self._compatible.aclose()

    def body(
        self,
        *,
        provider: str,
        model_id: str,
        system: str,
        user: str,
        temperature: float | None,
        max_tokens: int | None,
        json_schema: dict[str, Any] | None,
        structured_output: bool = True,
    ) -> dict[str, Any]:
        messages = [ChatMessage(role="system", content=system)] if system else []
        messages.append(ChatMessage(role="user", content=user))
        # structured output and strict exactly as a generation asks (llmts_providers.preview)
        schema, strict = schema_and_strict("json" if json_schema is not None else "text", json_schema)
        request = ChatRequest(
            model=model_id,
            messages=messages,
            temperature=temperature,
            max_tokens=max_tokens,
            json_schema=schema,
            strict=strict,
            supports_structured_output=structured_output,
        )
        if provider == "ollama":
            return self._ollama.build_request_body(request)
        if provider == "openai-compatible":
            return self._compatible.build_request_body(request)
        return self._openrouter.build_request_body(request)
