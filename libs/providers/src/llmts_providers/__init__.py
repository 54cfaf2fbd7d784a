"""OpenRouter, Ollama and OpenAI-compatible clients behind one interface, one error taxonomy and a factory."""

from llmts_providers.base import Provider
from llmts_providers.errors import (
    AuthFailed,
    BadRequest,
    ContextTooLong,
    InsufficientCredits,
    MidStreamError,
    ModelNotFound,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from llmts_providers.factory import ProviderFactory
from llmts_providers.models import (
    ChatMessage,
    ChatRequest,
    ChatResult,
    ConnectionTestResult,
    GenerationStats,
    ModelPricing,
    ModelRecord,
)
from llmts_providers.ollama import OllamaProvider
from llmts_providers.openai_compatible import OpenAICompatibleProvider
from llmts_providers.openrouter import OpenRouterProvider
from llmts_providers.settings import ProviderSettings

__all__ = [
    "AuthFailed",
    "BadRequest",
    "ChatMessage",
    "ChatRequest",
    "ChatResult",
    "ConnectionTestResult",
    "ContextTooLong",
    "GenerationStats",
    "InsufficientCredits",
    "MidStreamError",
    "ModelNotFound",
    "ModelPricing",
    "ModelRecord",
    "OllamaProvider",
    "OpenAICompatibleProvider",
    "OpenRouterProvider",
    "Provider",
    "ProviderError",
    "ProviderFactory",
    "ProviderSettings",
    "ProviderTimeout",
    "ProviderUnavailable",
    "RateLimited",
]
