"""Domain errors map to the documented statuses and headers."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from llmts_auth.domain import errors
from llmts_auth.entrypoints.http import STATUS, client_ip, to_app_error

pytestmark = pytest.mark.unit


def test_every_domain_error_has_a_status() -> None:
    leaves = _subclasses(errors.AuthError)
    assert leaves <= set(STATUS) | {errors.RefreshTokenReused}


def _subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out.add(sub)
        out |= _subclasses(sub)
    return out


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (errors.InvalidCredentials(), 401, "invalid_credentials"),
        (errors.EmailTaken("x"), 409, "email_taken"),
        (errors.WeakPassword("x"), 422, "weak_password"),
        (errors.RefreshTokenReused("x"), 401, "refresh_token_reused"),
        (errors.UnknownProvider("x"), 404, "unknown_provider"),
        (errors.ProviderNotConfigured("x"), 503, "provider_not_configured"),
        (errors.EmailNotVerified("x"), 403, "email_not_verified"),
        (errors.OAuthStateInvalid("x"), 400, "invalid_state"),
    ],
)
def test_status_and_code(exc: errors.AuthError, status: int, code: str) -> None:
    err = to_app_error(exc)
    assert (err.status_code, err.code) == (status, code)
    if status == 401:
        assert err.headers["WWW-Authenticate"].startswith("Bearer")


def test_throttle_carries_retry_after() -> None:
    err = to_app_error(errors.LoginThrottled(42))
    assert err.status_code == 429
    assert err.headers["Retry-After"] == "42"


def _request(xff: str | None, peer: str = "10.9.9.9") -> Request:
    headers = [(b"x-forwarded-for", xff.encode())] if xff else []
    return Request({"type": "http", "headers": headers, "client": (peer, 1234)})


def test_client_ip_takes_what_the_trusted_proxy_appended() -> None:
    assert client_ip(_request(None), 1) == "10.9.9.9"
    assert client_ip(_request("203.0.113.5"), 1) == "203.0.113.5"
    # a client-supplied X-Forwarded-For cannot pick the address: the gateway appends the real peer
    assert client_ip(_request("1.2.3.4, 203.0.113.5"), 1) == "203.0.113.5"
    assert client_ip(_request("1.2.3.4, 203.0.113.5, 10.0.0.2"), 2) == "203.0.113.5"
    assert client_ip(_request("1.2.3.4"), 0) == "10.9.9.9"
