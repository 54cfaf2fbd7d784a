"""Domain errors map to the documented statuses and headers."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from llmts_auth.domain import errors
from llmts_auth.entrypoints.http import STATUS, client_ip, to_app_error
from llmts_common.proxies import parse_networks

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


GATEWAY = parse_networks("10.9.9.0/24")


def test_forwarded_for_is_believed_only_from_a_trusted_proxy() -> None:
    assert client_ip(_request(None), GATEWAY) == "10.9.9.9"
    assert client_ip(_request("203.0.113.5"), GATEWAY) == "203.0.113.5"
    # the nearest untrusted hop is the client: what a client put before it is not believed
    assert client_ip(_request("1.2.3.4, 203.0.113.5"), GATEWAY) == "203.0.113.5"
    # a chain of trusted proxies is walked back
    assert client_ip(_request("1.2.3.4, 203.0.113.5, 10.9.9.2"), GATEWAY) == "203.0.113.5"
    # no trusted proxies, or a peer that is not one: the header is ignored (rotating it changes nothing)
    assert client_ip(_request("1.2.3.4"), ()) == "10.9.9.9"
    assert client_ip(_request("1.2.3.4", peer="198.51.100.7"), GATEWAY) == "198.51.100.7"
    assert client_ip(_request("garbage"), GATEWAY) == "10.9.9.9"


def test_busy_hasher_answers_429_with_retry_after() -> None:
    err = to_app_error(errors.ServerBusy(3))
    assert (err.status_code, err.code, err.headers["Retry-After"]) == (429, "server_busy", "3")
