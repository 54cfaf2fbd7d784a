"""OpenRouter, Ollama and OpenAI-compatible clients behind one interface, one error taxonomy and a factory."""

from llmts_providers.base import Provider
from llmts_providers.batches import BatchLineResult, BatchState, OpenAIBatches
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
    "BatchLineResult",
    "BatchState",
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
    "OpenAIBatches",
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
