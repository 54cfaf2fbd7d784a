"""Retry-After / reset parsing and HTTP status → taxonomy mapping (no I/O)."""

from __future__ import annotations

from email.utils import formatdate

import pytest

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
    error_from_status,
    parse_retry_after,
)

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0


def test_retry_after_seconds() -> None:
    assert parse_retry_after({"Retry-After": "7"}, now=NOW) == 7.0
    assert parse_retry_after({"retry-after": "1.5"}, now=NOW) == 1.5


def test_retry_after_http_date() -> None:
    header = formatdate(NOW + 30, usegmt=True)
    assert parse_retry_after({"Retry-After": header}, now=NOW) == pytest.approx(30.0, abs=1.0)


def test_retry_after_date_in_past_is_zero() -> None:
    assert parse_retry_after({"Retry-After": formatdate(NOW - 100, usegmt=True)}, now=NOW) == 0.0


def test_retry_after_ms_wins() -> None:
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "9"}, now=NOW) == 0.25


def test_ratelimit_reset_epoch_ms() -> None:
    reset_ms = str(int((NOW + 42) * 1000))
    assert parse_retry_after({"X-RateLimit-Reset": reset_ms}, now=NOW) == pytest.approx(42.0)


def test_ratelimit_reset_epoch_seconds_accepted() -> None:
    assert parse_retry_after({"X-RateLimit-Reset": str(int(NOW + 10))}, now=NOW) == pytest.approx(10.0)


def test_ratelimit_reset_mirrored_in_body() -> None:
    body = {
        "error": {"code": 429, "metadata": {"headers": {"X-RateLimit-Reset": str(int((NOW + 5) * 1000))}}}
    }
    assert parse_retry_after({}, body, now=NOW) == pytest.approx(5.0)


def test_retry_after_absent_or_garbage() -> None:
    assert parse_retry_after({}, now=NOW) is None
    assert parse_retry_after(None, now=NOW) is None
    assert parse_retry_after({"Retry-After": "soon"}, now=NOW) is None


@pytest.mark.parametrize(
    ("status", "message", "expected", "retryable"),
    [
        (429, "Rate limit exceeded", RateLimited, True),
        (402, "This request requires more credits", InsufficientCredits, False),
        (401, "User not found.", AuthFailed, False),
        (403, "Key disabled", AuthFailed, False),
        (404, "No endpoints found", ModelNotFound, False),
        (400, "acme/fake-1.0 is not a valid model ID", ModelNotFound, False),
        (400, "This endpoint's maximum context length is 8192 tokens.", ContextTooLong, False),
        (400, "the input length exceeds the context length", ContextTooLong, False),
        (413, "payload too large", ContextTooLong, False),
        (400, "temperature must be <= 2", BadRequest, False),
        (422, "unprocessable", BadRequest, False),
        (408, "timeout", ProviderTimeout, True),
        (500, "Internal", ProviderUnavailable, True),
        (502, "Provider returned error", ProviderUnavailable, True),
        (503, "No available model provider", ProviderUnavailable, True),
        (529, "overloaded", ProviderUnavailable, True),
    ],
)
def test_status_mapping(status: int, message: str, expected: type[ProviderError], retryable: bool) -> None:
    err = error_from_status("openrouter", status, {"error": {"message": message, "code": status}})
    assert type(err) is expected
    assert err.retryable is retryable
    assert err.status_code == status
    assert err.message == message
    assert err.provider == "openrouter"


def test_ollama_string_error_body_and_retry_after() -> None:
    err = error_from_status("ollama", 429, {"error": "too many requests"}, {"Retry-After": "3"})
    assert isinstance(err, RateLimited)
    assert err.message == "too many requests"
    assert err.retry_after == 3.0
    assert isinstance(error_from_status("ollama", 404, {"error": "model 'x' not found"}), ModelNotFound)


def test_503_carries_retry_after() -> None:
    err = error_from_status("openrouter", 503, {}, {"Retry-After": "2"})
    assert isinstance(err, ProviderUnavailable)
    assert err.retry_after == 2.0


def test_retryable_is_class_default_but_overridable() -> None:
    assert RateLimited.default_retryable is True
    assert InsufficientCredits.default_retryable is False
    assert MidStreamError("x", "openrouter").retryable is True
    assert ProviderUnavailable("x", "ollama", retryable=False).retryable is False
    assert issubclass(ProviderTimeout, ProviderUnavailable)


def test_error_to_dict_and_str() -> None:
    err = RateLimited("slow down", "openrouter", status_code=429, retry_after=1.0, raw={"secret": "raw body"})
    d = err.to_dict()
    assert d == {
        "type": "RateLimited",
        "code": "rate_limited",
        "message": "slow down",
        "provider": "openrouter",
        "status_code": 429,
        "retryable": True,
        "retry_after": 1.0,
    }
    assert "429" in str(err)
    assert "rate_limited" in str(err)
