"""Access-token verification against the auth service's JWKS (used by the gateway and every service).

Tokens are JWTs signed with an asymmetric key (Ed25519, ``alg: Ed25519``, RFC 9864 — or RS256) carrying a ``kid``.
The verifier caches the key set, refetches it when it meets an unknown ``kid`` (key rotation without downtime, at
most once per ``min_refresh_seconds``), and checks signature, ``exp``, ``nbf``, ``iss``, ``aud`` and ``typ``.
Symmetric algorithms and ``none`` are never accepted: the algorithm allow-list is fixed here, not read from the token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, KeySet
from joserfc.jwt import JWTClaimsRegistry

from llmts_common.errors import Unauthorized

ALLOWED_ALGORITHMS: tuple[str, ...] = ("Ed25519", "EdDSA", "RS256")
ROLES: tuple[str, ...] = ("user", "admin")


@dataclass(frozen=True)
class Principal:
    user_id: str
    email: str | None
    token_id: str | None
    claims: dict[str, Any]

    @property
    def role(self) -> str:
        """``user`` or ``admin`` (the ``role`` claim; tokens issued before roles existed are ``user``)."""
        role = self.claims.get("role")
        return role if role in ROLES else "user"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class JwksVerifier:
    def __init__(
        self,
        jwks_url: str,
        *,
        issuer: str,
        audience: str,
        leeway_seconds: int = 5,
        min_refresh_seconds: float = 10.0,
        http: httpx.AsyncClient | None = None,
        keyset: KeySet | None = None,
        fetch_jwks: Callable[[], Awaitable[dict[str, Any]]] | None = None,
        cache_seconds: float = 30.0,
        cache_size: int = 10_000,
    ) -> None:
        """``fetch_jwks`` replaces the HTTP fetch of ``jwks_url`` (the auth service reads its own key store).
        ``cache_seconds`` bounds how long a verified token is trusted without re-checking (0 disables)."""
        self._url = jwks_url
        self._fetch_jwks = fetch_jwks
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds
        self._min_refresh = min_refresh_seconds
        self._http = http
        self._keyset = keyset
        self._kids: set[str] = {str(k.kid) for k in keyset.keys} if keyset else set()
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._cache_seconds = cache_seconds
        self._cache_size = cache_size
        self._registry = JWTClaimsRegistry(
            leeway=leeway_seconds,
            exp={"essential": True},
            sub={"essential": True},
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
        )

    async def _refresh(self, force: bool = False) -> None:
        async with self._lock:
            if not force and self._keyset is not None:
                return
            if self._keyset is not None and time.monotonic() - self._fetched_at < self._min_refresh:
                return
            if self._fetch_jwks is not None:
                self._install(await self._fetch_jwks())
                return
            client = self._http or httpx.AsyncClient(timeout=5.0)
            try:
                resp = await client.get(self._url)
                resp.raise_for_status()
                data = resp.json()
            except (httpx.HTTPError, ValueError) as exc:
                if self._keyset is None:
                    raise Unauthorized(
                        "token verification keys unavailable", code="jwks_unavailable"
                    ) from exc
                return
            finally:
                if self._http is None:
                    await client.aclose()
            self._install(data)

    def _install(self, data: dict[str, Any]) -> None:
        """Import key by key: one malformed or unsupported entry must not take the whole set down."""
        keys = []
        raw_keys = data.get("keys") if isinstance(data, dict) else None
        for raw in raw_keys if isinstance(raw_keys, list) else []:
            try:
                keys.append(JWKRegistry.import_key(raw))
            except (JoseError, ValueError, TypeError, KeyError):
                continue
        keyset = KeySet(keys)
        self._keyset = keyset
        self._kids = {str(k.kid) for k in keyset.keys}
        self._fetched_at = time.monotonic()

    async def verify(self, token: str) -> Principal:
        """Verify a token; a token verified before is answered from a small cache until the earlier of its
        ``exp`` and ``cache_seconds`` later (a signature check per request is most of the gateway's cost)."""
        now = time.time()
        hit = self._cache.get(token)
        if hit is not None:
            principal, valid_until = hit
            if now < valid_until:
                return principal
            self._cache.pop(token, None)
        principal = await self._verify(token)
        if self._cache_seconds > 0:
            exp = float(principal.claims.get("exp", now))
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))  # oldest first (insertion order)
            self._cache[token] = (principal, min(exp, now + self._cache_seconds))
        return principal

    async def _verify(self, token: str) -> Principal:
        if not token or token.count(".") != 2:
            raise Unauthorized("malformed token", code="invalid_token")
        try:
            header = jws.extract_compact(token.encode()).headers()
        except (JoseError, ValueError) as exc:
            raise Unauthorized("malformed token", code="invalid_token") from exc
        alg = header.get("alg")
        kid = header.get("kid")
        if alg not in ALLOWED_ALGORITHMS:
            raise Unauthorized("token algorithm not accepted", code="invalid_token")
        if not isinstance(kid, str):
            raise Unauthorized("token has no key id", code="invalid_token")
        await self._refresh()
        if kid not in self._kids:
            await self._refresh(force=True)
        if kid not in self._kids or self._keyset is None:
            raise Unauthorized("token signed with an unknown key", code="invalid_token")
        try:
            decoded = jwt.decode(token, self._keyset, algorithms=list(ALLOWED_ALGORITHMS))
            self._registry.validate(decoded.claims)
        except JoseError as exc:
            raise Unauthorized(f"invalid token: {exc.error}", code="invalid_token") from exc
        except (ValueError, TypeError) as exc:
            raise Unauthorized("invalid token", code="invalid_token") from exc
        claims = decoded.claims
        if claims.get("typ") not in (None, "access"):
            raise Unauthorized("not an access token", code="invalid_token")
        return Principal(
            user_id=str(claims["sub"]),
            email=claims.get("email"),
            token_id=claims.get("jti"),
            claims=dict(claims),
        )


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("missing bearer token")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("authorization header must be 'Bearer <token>'")
    return value.strip()
