"""Access tokens for tests: an Ed25519 key, tokens signed with it, and a verifier that trusts it.

The claims are the auth service's (``iss`` ``llmts-auth``, ``aud`` ``llmts``, ``typ`` ``access``), so a service under
test verifies them exactly as it verifies real ones, without the auth service or its JWKS endpoint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, OKPKey

from llmts_common.auth import JwksVerifier
from tests.support.names import unique

ISSUER = "llmts-auth"
AUDIENCE = "llmts"
UNUSED_JWKS_URL = "http://127.0.0.1:9/jwks-unused"  # the verifier is given its keys; this URL is never called


def signing_key(kid: str | None = None) -> OKPKey:
    """A fresh private Ed25519 key (``kid`` random unless given)."""
    return OKPKey.generate_key("Ed25519", parameters={"kid": kid or unique("test-", 8)}, private=True)


def access_claims(
    sub: str, *, ttl: int = 3600, issuer: str = ISSUER, audience: str = AUDIENCE, **extra: Any
) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": sub,
        "iat": now,
        "exp": now + ttl,
        "typ": "access",
    }
    claims.update(extra)
    return claims


def sign(key: OKPKey, claims: dict[str, Any]) -> str:
    """``claims`` as an EdDSA JWT whose header names the key's ``kid``."""
    return jwt.encode({"alg": "Ed25519", "kid": key.kid}, claims, key, algorithms=["Ed25519"])


def access_token(key: OKPKey, sub: str, *, ttl: int = 3600, **extra: Any) -> str:
    return sign(key, access_claims(sub, ttl=ttl, **extra))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def verifier_for(key: OKPKey, *, issuer: str = ISSUER, audience: str = AUDIENCE) -> JwksVerifier:
    """A ``JwksVerifier`` that trusts the public half of ``key`` (and nothing else)."""
    public = OKPKey.import_key(key.as_dict(private=False))
    return JwksVerifier(UNUSED_JWKS_URL, issuer=issuer, audience=audience, keyset=KeySet([public]))


@dataclass
class Signer:
    """One key: tokens and headers for any user, and the verifier a service under test should use."""

    key: OKPKey

    @property
    def kid(self) -> str:
        return str(self.key.kid)

    def token(self, sub: str, ttl: int = 3600, **extra: Any) -> str:
        return access_token(self.key, sub, ttl=ttl, **extra)

    def headers(self, sub: str, ttl: int = 3600) -> dict[str, str]:
        return bearer(self.token(sub, ttl))

    def verifier(self) -> JwksVerifier:
        return verifier_for(self.key)


def make_signer(kid: str | None = None) -> Signer:
    return Signer(signing_key(kid))
