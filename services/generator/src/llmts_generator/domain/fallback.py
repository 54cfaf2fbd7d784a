"""When a job leaves its model for the next one of its fallback chain (pure rules, no I/O).

A job's ``model`` may carry ``fallback: [models]``. The remaining items go to the next model when the current one:

- is **unreachable** (no connection at all: refused, DNS, reset before any answer) — at once, since retrying a
  server that is gone only delays the job;
- stays **unavailable** (5xx, timeouts) after the call's retries are exhausted;
- is **unknown** to its provider (404), or the provider account is **out of credits** (402) or refuses the key —
  errors that would otherwise fail the whole job;
- trips the job's **error-rate breaker** (most item attempts failing).

Everything else (429, a bad request, a context too long, invalid answers) stays with the current model: the next
one would not fix it, or the retry policy already handles it.
"""

from __future__ import annotations

from typing import Final

from llmts_providers.errors import (
    AuthFailed,
    InsufficientCredits,
    ModelNotFound,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)

UNREACHABLE: Final = "unreachable"
UNAVAILABLE: Final = "unavailable"
MODEL_NOT_FOUND: Final = "model_not_found"
INSUFFICIENT_CREDITS: Final = "insufficient_credits"
AUTH_FAILED: Final = "auth_failed"
BREAKER_OPEN: Final = "breaker_open"
UNRESOLVABLE: Final = "unresolvable"


def is_unreachable(error: ProviderError) -> bool:
    """No HTTP answer and no timeout: the server is not there (connection refused, DNS, reset)."""
    return (
        isinstance(error, ProviderUnavailable)
        and not isinstance(error, ProviderTimeout)
        and (error.status_code is None)
    )


def immediate_reason(error: ProviderError) -> str | None:
    """The reason to switch models right after this error, or None to keep the current model for now."""
    if isinstance(error, ModelNotFound):
        return MODEL_NOT_FOUND
    if isinstance(error, InsufficientCredits):
        return INSUFFICIENT_CREDITS
    if isinstance(error, AuthFailed):
        return AUTH_FAILED
    if is_unreachable(error):
        return UNREACHABLE
    return None


def exhausted_reason(error: ProviderError) -> str | None:
    """The reason to switch models once the retries of a call are exhausted on this error, else None."""
    if isinstance(error, ProviderUnavailable):
        return UNAVAILABLE
    return immediate_reason(error)
