"""OAuth 2.0 clients (Authlib's httpx ``AsyncOAuth2Client``) for Google (OIDC) and GitHub.

Every endpoint is a setting, so tests point them at a local fake. Both use the authorization-code flow with PKCE
(S256) and a single-use state; Google's id_token is verified against Google's JWKS (signature, ``iss``, ``aud``,
``exp``, ``nonce``) and its ``email_verified`` claim decides; GitHub's verified primary email comes from
``/user/emails``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import time
from types import ModuleType
from typing import Any

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from llmts_auth.domain.errors import (
    InvalidIdToken,
    OAuthExchangeFailed,
    ProviderUnavailable,
)
from llmts_auth.domain.users import ExternalProfile

ID_TOKEN_ALGORITHMS = ["RS256", "ES256", "Ed25519", "EdDSA"]


def _http_modules() -> list[ModuleType]:
    """Authlib >= 1.9 runs on ``httpx2`` when it is installed and falls back to ``httpx``: catch both."""
    modules: list[ModuleType] = [httpx]
    with contextlib.suppress(ImportError):
        modules.append(importlib.import_module("httpx2"))
    return modules


HTTP_ERRORS: tuple[type[Exception], ...] = tuple(m.HTTPError for m in _http_modules())
HTTP_STATUS_ERRORS: tuple[type[Exception], ...] = tuple(m.HTTPStatusError for m in _http_modules())


class _OAuth2Provider:
    name: str = ""
    scope: str = ""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        authorize_url: str,
        token_url: str,
        timeout: float = 10.0,
    ) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.authorize_url = authorize_url
        self.token_url = token_url
        self.timeout = timeout
        # Only used to build URLs (no I/O, no token state): safe to share.
        self._url_client = AsyncOAuth2Client(
            client_id=client_id, scope=self.scope, code_challenge_method="S256"
        )

    async def aclose(self) -> None:
        await self._url_client.aclose()

    def authorization_url(self, *, state: str, code_verifier: str, nonce: str, redirect_uri: str) -> str:
        extra: dict[str, str] = {"nonce": nonce} if self.name == "google" else {}
        url, _ = self._url_client.create_authorization_url(
            self.authorize_url,
            state=state,
            code_verifier=code_verifier,
            redirect_uri=redirect_uri,
            **extra,
        )
        return str(url)

    def _session(self, redirect_uri: str) -> AsyncOAuth2Client:
        """One client per exchange: Authlib keeps the fetched token on the client."""
        return AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=self._client_secret,
            scope=self.scope,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=self.timeout,
            follow_redirects=False,
        )

    async def _exchange(self, client: AsyncOAuth2Client, *, code: str, code_verifier: str) -> dict[str, Any]:
        try:
            token = await client.fetch_token(
                self.token_url,
                code=code,
                code_verifier=code_verifier,
                headers={"Accept": "application/json"},
            )
        except OAuthError as exc:
            raise OAuthExchangeFailed(
                f"{self.name} rejected the authorization code",
                details={"error": exc.error, "error_description": exc.description},
            ) from exc
        except HTTP_STATUS_ERRORS as exc:
            status = int(exc.response.status_code)  # type: ignore[attr-defined]
            if status >= 500:
                raise ProviderUnavailable(
                    f"{self.name} is not answering properly", details={"status": status}
                ) from exc
            raise OAuthExchangeFailed(
                f"{self.name} rejected the token request", details={"status": status}
            ) from exc
        except HTTP_ERRORS as exc:
            raise ProviderUnavailable(
                f"{self.name} is unreachable", details={"error": type(exc).__name__}
            ) from exc
        except ValueError as exc:
            raise OAuthExchangeFailed(f"{self.name} answered an unreadable token response") from exc
        if not isinstance(token, dict) or not token.get("access_token"):
            raise OAuthExchangeFailed(f"{self.name} answered no access token")
        return dict(token)

    async def _get_json(self, client: AsyncOAuth2Client, url: str) -> Any:
        try:
            resp = await client.get(url, headers={"Accept": "application/json"})
        except HTTP_ERRORS as exc:
            raise ProviderUnavailable(
                f"{self.name} is unreachable", details={"error": type(exc).__name__}
            ) from exc
        if resp.status_code >= 500:
            raise ProviderUnavailable(
                f"{self.name} is not answering properly", details={"status": resp.status_code}
            )
        if resp.status_code >= 400:
            raise OAuthExchangeFailed(
                f"{self.name} refused the profile request", details={"status": resp.status_code}
            )
        try:
            return resp.json()
        except ValueError as exc:
            raise OAuthExchangeFailed(f"{self.name} answered an unreadable profile") from exc


class GoogleProvider(_OAuth2Provider):
    name = "google"
    scope = "openid email profile"

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        authorize_url: str,
        token_url: str,
        jwks_url: str,
        issuers: list[str],
        timeout: float = 10.0,
        jwks_min_refresh_seconds: float = 10.0,
    ) -> None:
        super().__init__(
            client_id=client_id,
            client_secret=client_secret,
            authorize_url=authorize_url,
            token_url=token_url,
            timeout=timeout,
        )
        self.jwks_url = jwks_url
        self.issuers = issuers
        self._keyset: KeySet | None = None
        self._fetched_at = -1e9
        self._min_refresh = jwks_min_refresh_seconds
        self._lock = asyncio.Lock()
        self._http = httpx.AsyncClient(timeout=timeout)

    async def aclose(self) -> None:
        await super().aclose()
        await self._http.aclose()

    async def fetch_profile(
        self, *, code: str, code_verifier: str, nonce: str, redirect_uri: str
    ) -> ExternalProfile:
        async with self._session(redirect_uri) as client:
            token = await self._exchange(client, code=code, code_verifier=code_verifier)
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise InvalidIdToken("google answered no id_token")
        claims = await self.verify_id_token(id_token, nonce=nonce)
        verified = claims.get("email_verified")
        return ExternalProfile(
            provider=self.name,
            subject=str(claims["sub"]),
            email=claims.get("email"),
            email_verified=verified is True or verified == "true",
            name=claims.get("name"),
        )

    async def _keys(self, kid: str | None) -> KeySet:
        async with self._lock:
            have = self._keyset is not None and (kid is None or any(k.kid == kid for k in self._keyset.keys))
            stale_ok = time.monotonic() - self._fetched_at < self._min_refresh
            if self._keyset is None or (not have and not stale_ok):
                try:
                    resp = await self._http.get(self.jwks_url)
                    resp.raise_for_status()
                    self._keyset = KeySet.import_key_set(resp.json())
                    self._fetched_at = time.monotonic()
                except (httpx.HTTPError, ValueError, JoseError) as exc:
                    if self._keyset is None:
                        raise ProviderUnavailable(
                            "google's signing keys are unavailable", details={"error": type(exc).__name__}
                        ) from exc
            assert self._keyset is not None
            return self._keyset

    async def verify_id_token(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        try:
            header = jws.extract_compact(id_token.encode()).headers()
            keyset = await self._keys(header.get("kid"))
            decoded = jwt.decode(id_token, keyset, algorithms=ID_TOKEN_ALGORITHMS)
            JWTClaimsRegistry(
                leeway=30,
                iss={"essential": True, "values": self.issuers},
                aud={"essential": True, "value": self.client_id},
                exp={"essential": True},
                sub={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(decoded.claims)
        except JoseError as exc:
            raise InvalidIdToken(f"google id_token rejected: {exc.error}") from exc
        except (ValueError, TypeError) as exc:
            raise InvalidIdToken("google id_token is malformed") from exc
        return dict(decoded.claims)


class GitHubProvider(_OAuth2Provider):
    name = "github"
    scope = "read:user user:email"

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        authorize_url: str,
        token_url: str,
        api_url: str,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(
            client_id=client_id,
            client_secret=client_secret,
            authorize_url=authorize_url,
            token_url=token_url,
            timeout=timeout,
        )
        self.api_url = api_url.rstrip("/")

    async def fetch_profile(
        self, *, code: str, code_verifier: str, nonce: str, redirect_uri: str
    ) -> ExternalProfile:
        async with self._session(redirect_uri) as client:
            await self._exchange(client, code=code, code_verifier=code_verifier)
            user = await self._get_json(client, f"{self.api_url}/user")
            emails = await self._get_json(client, f"{self.api_url}/user/emails")
        if not isinstance(user, dict) or "id" not in user:
            raise OAuthExchangeFailed("github answered an unusable profile")
        primary = (
            next((e for e in emails if isinstance(e, dict) and e.get("primary")), None)
            if isinstance(emails, list)
            else None
        )
        return ExternalProfile(
            provider=self.name,
            subject=str(user["id"]),
            email=primary.get("email") if primary else None,
            email_verified=bool(primary and primary.get("verified") is True),
            name=user.get("name") or user.get("login"),
        )
