"""The exact request body a generation would send, built by the provider library itself."""

from __future__ import annotations

from typing import Any

from llmts_providers.models import ChatMessage, ChatRequest
from llmts_providers.ollama import OllamaProvider
from llmts_providers.openrouter import OpenRouterProvider


def provider_for(model_id: str, provider: str | None) -> str:
    """Explicit provider, else an ``ollama/`` prefix means Ollama, else OpenRouter."""
    if provider in ("openrouter", "ollama"):
        return provider
    return "ollama" if model_id.startswith("ollama/") else "openrouter"


class ProviderRequestBuilder:
    def __init__(self) -> None:
        # No I/O happens here: the clients inside connect lazily and are only closed at shutdown.
        self._openrouter = OpenRouterProvider(api_key=None)
        self._ollama = OllamaProvider()

    async def aclose(self) -> None:
        await self._openrouter.aclose()
        await self._ollama.aclose()

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
        request = ChatRequest(
            model=model_id,
            messages=messages,
            temperature=temperature,
            max_tokens=max_tokens,
            json_schema=json_schema,
            supports_structured_output=structured_output,
        )
        builder = self._ollama if provider == "ollama" else self._openrouter
        return builder.build_request_body(request)
