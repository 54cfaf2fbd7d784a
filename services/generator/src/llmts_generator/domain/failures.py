"""Which provider failures end a whole job, and how that is explained to the user."""

from __future__ import annotations

from llmts_providers.errors import (
    AuthFailed,
    BadRequest,
    ContextTooLong,
    InsufficientCredits,
    ModelNotFound,
    ProviderError,
)


def fatal_code(exc: ProviderError) -> str | None:
    """The failure code when a provider error makes the whole job pointless, else None."""
    if isinstance(exc, InsufficientCredits):
        return "insufficient_credits"
    if isinstance(exc, AuthFailed):
        return "provider_auth_failed"
    if isinstance(exc, ModelNotFound):
        return "model_not_found"
    if isinstance(exc, ContextTooLong):
        return "context_too_long"
    if isinstance(exc, BadRequest):
        return "provider_bad_request"
    if not exc.retryable:
        return exc.code or "provider_error"
    return None


def fatal_reason(code: str, exc: ProviderError) -> str:
    prefix = {
        "insufficient_credits": "the provider account has insufficient credits (HTTP 402); add credits and retry",
        "provider_auth_failed": "the provider rejected the API key",
        "model_not_found": "the provider does not know this model",
        "context_too_long": "the prompt exceeds the model's context length",
        "provider_bad_request": "the provider rejected the request",
    }.get(code, "the provider failed")
    return f"{prefix}: {exc.message}"[:1000]
