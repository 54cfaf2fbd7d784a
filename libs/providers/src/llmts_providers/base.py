"""The provider port every adapter implements."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from llmts_providers.models import ChatRequest, ChatResult, ConnectionTestResult, ModelRecord

__all__ = ["Provider"]


@runtime_checkable
class Provider(Protocol):
    """One LLM provider. All failures are raised as :mod:`llmts_providers.errors` types.

    ``test_connection`` never raises for provider failures: an unreachable provider is a result.
    """

    name: str

    async def list_models(self) -> list[ModelRecord]: ...

    async def get_model(self, model_id: str) -> ModelRecord: ...

    async def chat(self, request: ChatRequest) -> ChatResult:
        """Non-streaming, or streaming when ``request.stream`` (text aggregated); same result either way."""
        ...

    def build_request_body(self, request: ChatRequest) -> dict[str, Any]:
        """The exact JSON body ``chat`` would send (used for previews)."""
        ...

    async def test_connection(self) -> ConnectionTestResult: ...

    async def aclose(self) -> None: ...
