"""JOSE with joserfc: Ed25519 signing keys (JWK), access-token signing and the public JWKS."""

from __future__ import annotations

import secrets
import time
from datetime import datetime
from typing import Any

from joserfc import jwt
from joserfc.jwk import OKPKey

from llmts_auth.domain.ports import Clock, SigningKeyStore
from llmts_auth.domain.tokens import SigningKey, active_key
from llmts_auth.handlers import public_jwks

ALGORITHM = "Ed25519"  # RFC 9864 name of EdDSA over Ed25519; joserfc 1.8 wants it spelled out


def generate_ed25519_key(now: datetime) -> SigningKey:
    kid = f"{now:%Y%m%d}-{secrets.token_hex(6)}"
    key = OKPKey.generate_key(
        "Ed25519", parameters={"kid": kid, "use": "sig", "alg": ALGORITHM}, private=True
    )
    return SigningKey(
        kid=kid,
        alg=ALGORITHM,
        public_jwk=dict(key.as_dict(private=False)),
        private_jwk=dict(key.as_dict(private=True)),
        created_at=now,
        activated_at=now,
    )


class JoseTokenSigner:
    """Signs with the active key. Each replica caches the key set for ``cache_seconds`` so a rotation done by
    another replica is picked up within that time (the retired key stays in the JWKS long enough for it)."""

    def __init__(self, keys: SigningKeyStore, *, clock: Clock, cache_seconds: float = 30.0) -> None:
        self._keys = keys
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._cached: list[SigningKey] = []
        self._loaded_at = -1e9
        self._imported: dict[str, OKPKey] = {}

    def invalidate(self) -> None:
        self._loaded_at = -1e9

    async def _all(self) -> list[SigningKey]:
        if time.monotonic() - self._loaded_at > self._cache_seconds:
            self._cached = await self._keys.all()
            self._loaded_at = time.monotonic()
        return self._cached

    async def sign(self, claims: dict[str, Any]) -> str:
        key = active_key(await self._all(), now=self._clock())
        if key is None:
            self.invalidate()
            key = active_key(await self._all(), now=self._clock())
        if key is None:
            raise RuntimeError("no active signing key")
        private = self._imported.get(key.kid)
        if private is None:
            private = OKPKey.import_key(key.private_jwk)
            self._imported[key.kid] = private
        header = {"alg": key.alg, "kid": key.kid, "typ": "JWT"}
        return jwt.encode(header, claims, private, algorithms=[key.alg])

    async def jwks(self) -> dict[str, Any]:
        """Public keys only: the active key, keys activated later, and retired keys still within their grace.

        Always read from the store (not the signing cache): a verifier that meets a new ``kid`` must find it.
        """
        keys = await self._keys.all()
        return public_jwks(keys, now=self._clock())
