"""One error taxonomy for every provider.

Retry decisions are keyed off the HTTP status (plus ``Retry-After``), never off body fields, as
providers-api.md A5 recommends. ``retryable`` is a class default that an instance may override.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "AuthFailed",
    "BadRequest",
    "ContextTooLong",
    "InsufficientCredits",
    "MidStreamError",
    "ModelNotFound",
    "ProviderError",
    "ProviderTimeout",
    "ProviderUnavailable",
    "RateLimited",
    "error_from_status",
    "parse_retry_after",
]


class ProviderError(Exception):
    """Base of every provider failure. ``code`` is a stable machine name for events and logs."""

    code: ClassVar[str] = "provider_error"
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        provider: str,
        status_code: int | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        raw: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status_code = status_code
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after = retry_after
        self.raw = raw
        # the provider's id of a generation that started before the failure (a stream cut after its first chunk):
        # what the provider billed can still be looked up (OpenRouter ``GET /generation?id=``)
        self.generation_id: str | None = None

    def __str__(self) -> str:
        status = f" {self.status_code}" if self.status_code is not None else ""
        return f"[{self.provider}{status} {self.code}] {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, provider={self.provider!r}, "
            f"status_code={self.status_code!r}, retryable={self.retryable!r}, retry_after={self.retry_after!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (no raw body) for events, attempts and logs."""
        return {
            "type": type(self).__name__,
            "code": self.code,
            "message": self.message,
            "provider": self.provider,
            "status_code": self.status_code,
            "retryable": self.retryable,
            "retry_after": self.retry_after,
        }


class RateLimited(ProviderError):
    """429 (or a provider-side rate limit). ``retry_after`` in seconds when the provider said so."""

    code = "rate_limited"
    default_retryable = True


class InsufficientCredits(ProviderError):
    """402: out of credits or key limit reached. Retrying does not help."""

    code = "insufficient_credits"


class AuthFailed(ProviderError):
    """401/403: missing, invalid or disabled key, or permission/moderation refusal."""

    code = "auth_failed"


class ModelNotFound(ProviderError):
    """404, OpenRouter's 400 "is not a valid model ID", or Ollama's "model ... not found"."""

    code = "model_not_found"


class ContextTooLong(ProviderError):
    """400 whose message says the prompt exceeds the model's context length."""

    code = "context_too_long"


class ProviderUnavailable(ProviderError):
    """Connection refused/reset, timeouts, 408 and 5xx: the provider could not answer now."""

    code = "provider_unavailable"
    default_retryable = True


class ProviderTimeout(ProviderUnavailable):
    """The request (or a stream read) exceeded the configured timeout."""

    code = "provider_timeout"


class BadRequest(ProviderError):
    """Any other 4xx: the request itself is wrong; retrying the same request does not help."""

    code = "bad_request"


class MidStreamError(ProviderError):
    """An error reported inside a 200 response: an SSE/NDJSON error chunk, or a 200 body carrying ``error``.

    ``partial_text`` holds what had been streamed before the error.
    """

    code = "mid_stream_error"
    default_retryable = True

    def __init__(
        self,
        message: str,
        provider: str,
        status_code: int | None = 200,
        retryable: bool | None = None,
        retry_after: float | None = None,
        raw: Any = None,
        partial_text: str = "",
    ) -> None:
        super().__init__(message, provider, status_code, retryable, retry_after, raw)
        self.partial_text = partial_text


_CONTEXT_MARKERS = (
    "context length",
    "context_length",
    "context window",
    "maximum context",
    "too many tokens",
    "prompt is too long",
    "context_length_exceeded",
)
_MODEL_MARKERS = ("not a valid model id", "model not found", "no endpoints found", "does not exist")


def _lower_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    if not headers:
        return {}
    return {str(k).lower(): str(v) for k, v in headers.items()}


def _epoch_to_delay(value: float, now: float) -> float:
    # X-RateLimit-Reset is epoch *milliseconds* on OpenRouter; accept epoch seconds too.
    epoch_s = value / 1000.0 if value > 1e11 else value
    return max(0.0, epoch_s - now)


def parse_retry_after(
    headers: Mapping[str, str] | None, body: Any = None, *, now: float | None = None
) -> float | None:
    """Seconds to wait before retrying, or None if the response does not say.

    Order: ``retry-after-ms`` (ms), ``Retry-After`` (delta seconds or an HTTP-date), then ``X-RateLimit-Reset``
    (epoch ms, also read from OpenRouter's mirrored ``error.metadata.headers`` in the body).
    """
    now = time.time() if now is None else now
    h = _lower_headers(headers)
    ms = h.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    ra = h.get("retry-after")
    if ra is not None:
        ra = ra.strip()
        try:
            return max(0.0, float(ra))
        except ValueError:
            try:
                dt = email.utils.parsedate_to_datetime(ra)
            except (TypeError, ValueError, IndexError):
                dt = None
            if dt is not None:
                return max(0.0, dt.timestamp() - now)
    reset = h.get("x-ratelimit-reset")
    if reset is None and isinstance(body, Mapping):
        err = body.get("error", body)
        meta = err.get("metadata") if isinstance(err, Mapping) else None
        mirrored = meta.get("headers") if isinstance(meta, Mapping) else None
        if isinstance(mirrored, Mapping):
            value = _lower_headers({str(k): str(v) for k, v in mirrored.items()}).get("x-ratelimit-reset")
            reset = value
    if reset is not None:
        try:
            return _epoch_to_delay(float(reset), now)
        except ValueError:
            return None
    return None


def error_message(body: Any, default: str) -> str:
    """Extract a human message from OpenRouter ``{"error":{"message":…}}`` or Ollama ``{"error":"…"}`` bodies."""
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, str) and err:
            return err
        if isinstance(err, Mapping):
            msg = err.get("message")
            if isinstance(msg, str) and msg:
                raw_meta = err.get("metadata")
                if isinstance(raw_meta, Mapping) and isinstance(raw_meta.get("raw"), str):
                    return f"{msg}: {raw_meta['raw']}"
                return msg
        msg = body.get("message")
        if isinstance(msg, str) and msg:
            return msg
    if isinstance(body, str) and body:
        return body[:500]
    return default


def error_from_status(
    provider: str,
    status_code: int,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    *,
    message: str | None = None,
) -> ProviderError:
    """Map an HTTP error response to the taxonomy (status first, message only to refine 400/404)."""
    msg = message or error_message(body, f"HTTP {status_code}")
    low = msg.lower()
    kwargs: dict[str, Any] = {"status_code": status_code, "raw": body}
    if status_code == 429:
        return RateLimited(msg, provider, retry_after=parse_retry_after(headers, body), **kwargs)
    if status_code == 402:
        return InsufficientCredits(msg, provider, **kwargs)
    if status_code in (401, 403):
        return AuthFailed(msg, provider, **kwargs)
    if status_code == 404:
        return ModelNotFound(msg, provider, **kwargs)
    if status_code == 408:
        return ProviderTimeout(msg, provider, retry_after=parse_retry_after(headers, body), **kwargs)
    if status_code >= 500:
        return ProviderUnavailable(msg, provider, retry_after=parse_retry_after(headers, body), **kwargs)
    if status_code == 413 or any(m in low for m in _CONTEXT_MARKERS):
        return ContextTooLong(msg, provider, **kwargs)
    if any(m in low for m in _MODEL_MARKERS) or ("model" in low and "not found" in low):
        return ModelNotFound(msg, provider, **kwargs)
    return BadRequest(msg, provider, **kwargs)
