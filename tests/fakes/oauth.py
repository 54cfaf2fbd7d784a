"""A protocol-faithful fake of Google's OAuth2/OIDC and GitHub's OAuth endpoints, for the auth service's tests.

Routes (Starlette; run it with ``tests.fakes.server.RunningFake`` on a free 127.0.0.1 port):

Google (OIDC, authorization code + PKCE S256; id_token signed RS256 with a ``kid``)
    GET  /google/authorize         → 302 redirect_uri?code=…&state=…   (or ?error=access_denied&state=…)
    POST /google/token             → {access_token, token_type, expires_in, scope, id_token} | 400 {error}
    GET  /google/userinfo          → OIDC userinfo (Bearer access token)
    GET  /google/jwks              → {"keys": [RSA public JWK]}
GitHub (authorization code + PKCE S256)
    GET  /github/authorize         → 302 redirect_uri?code=…&state=…
    POST /github/login/oauth/access_token
                                   → 200 {access_token, token_type, scope}; errors as GitHub does it:
                                     **200** {error: "bad_verification_code", error_description, error_uri}
    GET  /github/api/user          → {id, login, name, email}
    GET  /github/api/user/emails   → [{email, primary, verified, visibility}]

The test drives behaviour through ``FakeOAuth`` (same process): which user logs in next, whether emails are
verified, whether the token endpoint fails, and can inspect what the client sent (``token_requests``).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

GOOGLE_CLIENT_ID = "google-client-id.apps.example"
GOOGLE_CLIENT_SECRET = "google-fake-client-secret"
GITHUB_CLIENT_ID = "github-fake-client-id"
GITHUB_CLIENT_SECRET = "github-fake-client-secret"


@dataclasses.dataclass
class FakeUser:
    subject: str
    email: str | None
    email_verified: bool = True
    name: str | None = "Fake Person"
    login: str = "fake-person"
    # GitHub: extra (non-primary) addresses, e.g. a verified secondary while the primary is unverified
    other_emails: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _Grant:
    provider: str
    client_id: str
    redirect_uri: str
    code_challenge: str | None
    nonce: str | None
    user: FakeUser
    expires: float


class FakeOAuth:
    """State of the fake provider; mutate it from the test."""

    def __init__(self) -> None:
        self.base_url = ""  # set by the test once the server runs (the id_token issuer derives from it)
        self.signing_key = RSAKey.generate_key(
            2048, parameters={"kid": "fake-google-1", "use": "sig"}, private=True
        )
        self.reset()

    def reset(self) -> None:
        self.google_user: FakeUser | None = None
        self.github_user: FakeUser | None = None
        self.deny_next = False  # authorize answers error=access_denied
        self.token_error: str | None = None  # token endpoint answers this OAuth error
        self.token_status_5xx = False  # token endpoint answers 503
        self.id_token_signing_key: RSAKey | None = None  # sign the id_token with another key (forgery)
        self.id_token_overrides: dict[str, Any] = {}
        self.grants: dict[str, _Grant] = {}
        self.access_tokens: dict[str, FakeUser] = {}
        self.token_requests: list[dict[str, Any]] = []

    @property
    def google_issuer(self) -> str:
        return f"{self.base_url}/google"

    def settings(self) -> dict[str, Any]:
        """AuthSettings keyword arguments pointing both providers at this fake."""
        return {
            "google_client_id": GOOGLE_CLIENT_ID,
            "google_client_secret": GOOGLE_CLIENT_SECRET,
            "google_authorize_url": f"{self.base_url}/google/authorize",
            "google_token_url": f"{self.base_url}/google/token",
            "google_jwks_url": f"{self.base_url}/google/jwks",
            "google_issuer": self.google_issuer,
            "github_client_id": GITHUB_CLIENT_ID,
            "github_client_secret": GITHUB_CLIENT_SECRET,
            "github_authorize_url": f"{self.base_url}/github/authorize",
            "github_token_url": f"{self.base_url}/github/login/oauth/access_token",
            "github_api_url": f"{self.base_url}/github/api",
        }


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _client_credentials(request: Request, form: dict[str, Any]) -> tuple[str | None, str | None]:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            raw = base64.b64decode(auth[6:]).decode()
        except ValueError:
            return None, None
        cid, _, secret = raw.partition(":")
        return unquote(cid), unquote(secret)
    return form.get("client_id"), form.get("client_secret")


def create_app(fake: FakeOAuth) -> Starlette:
    clients = {
        "google": (GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET),
        "github": (GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET),
    }

    def authorize(provider: str) -> Any:
        async def endpoint(request: Request) -> Response:
            q = request.query_params
            redirect_uri = q.get("redirect_uri", "")
            state = q.get("state")
            if q.get("client_id") != clients[provider][0] or not redirect_uri:
                return JSONResponse({"error": "invalid_client"}, status_code=400)
            if q.get("response_type") != "code":
                return JSONResponse({"error": "unsupported_response_type"}, status_code=400)
            if fake.deny_next:
                fake.deny_next = False
                params = {"error": "access_denied", "error_description": "The user denied the request"}
                if state:
                    params["state"] = state
                return RedirectResponse(f"{redirect_uri}?{urlencode(params)}", status_code=302)
            user = fake.google_user if provider == "google" else fake.github_user
            if user is None:
                return JSONResponse({"error": "no fake user configured"}, status_code=500)
            if q.get("code_challenge") and q.get("code_challenge_method") != "S256":
                return JSONResponse({"error": "invalid_request"}, status_code=400)
            code = secrets.token_urlsafe(24)
            fake.grants[code] = _Grant(
                provider=provider,
                client_id=q["client_id"],
                redirect_uri=redirect_uri,
                code_challenge=q.get("code_challenge"),
                nonce=q.get("nonce"),
                user=user,
                expires=time.time() + 60,
            )
            params = {"code": code}
            if state:
                params["state"] = state
            return RedirectResponse(f"{redirect_uri}?{urlencode(params)}", status_code=302)

        return endpoint

    def token(provider: str) -> Any:
        def error(code: str, description: str) -> Response:
            body = {"error": code, "error_description": description}
            if provider == "github":  # GitHub answers errors with 200
                body["error_uri"] = (
                    "https://docs.github.com/apps/troubleshooting-oauth-app-access-token-request-errors"
                )
                return JSONResponse(body, status_code=200)
            return JSONResponse(body, status_code=400)

        async def endpoint(request: Request) -> Response:
            # parsed by hand: Starlette's form parser needs python-multipart, which the project does not ship
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            cid, secret = _client_credentials(request, form)
            fake.token_requests.append(
                {"provider": provider, "form": {k: v for k, v in form.items() if k != "client_secret"}}
            )
            if fake.token_status_5xx:
                return JSONResponse({"error": "temporarily_unavailable"}, status_code=503)
            if fake.token_error:
                return error(fake.token_error, "configured failure")
            if (cid, secret) != clients[provider]:
                return error(
                    "invalid_client" if provider == "google" else "incorrect_client_credentials", "bad client"
                )
            if form.get("grant_type") != "authorization_code":
                return error("unsupported_grant_type", "grant_type")
            grant = fake.grants.pop(str(form.get("code", "")), None)
            if grant is None or grant.provider != provider or grant.expires < time.time():
                return error("invalid_grant" if provider == "google" else "bad_verification_code", "bad code")
            if form.get("redirect_uri") != grant.redirect_uri:
                return error(
                    "invalid_grant" if provider == "google" else "redirect_uri_mismatch", "redirect_uri"
                )
            if grant.code_challenge and _s256(str(form.get("code_verifier", ""))) != grant.code_challenge:
                return error("invalid_grant", "PKCE verification failed")
            access = secrets.token_urlsafe(24)
            fake.access_tokens[access] = grant.user
            if provider == "github":
                return JSONResponse(
                    {"access_token": access, "token_type": "bearer", "scope": "read:user,user:email"}
                )
            now = int(time.time())
            claims = {
                "iss": fake.google_issuer,
                "aud": grant.client_id,
                "sub": grant.user.subject,
                "iat": now,
                "exp": now + 3600,
                "email": grant.user.email,
                "email_verified": grant.user.email_verified,
                "name": grant.user.name,
                **({"nonce": grant.nonce} if grant.nonce else {}),
                **fake.id_token_overrides,
            }
            key = fake.id_token_signing_key or fake.signing_key
            id_token = jwt.encode(
                {"alg": "RS256", "kid": fake.signing_key.kid}, claims, key, algorithms=["RS256"]
            )
            return JSONResponse(
                {
                    "access_token": access,
                    "token_type": "Bearer",
                    "expires_in": 3599,
                    "scope": "openid email profile",
                    "id_token": id_token,
                }
            )

        return endpoint

    def bearer_user(request: Request) -> FakeUser | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return None
        return fake.access_tokens.get(value.strip())

    async def jwks(_: Request) -> Response:
        return JSONResponse({"keys": [fake.signing_key.as_dict(private=False)]})

    async def google_userinfo(request: Request) -> Response:
        user = bearer_user(request)
        if user is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse(
            {
                "sub": user.subject,
                "email": user.email,
                "email_verified": user.email_verified,
                "name": user.name,
            }
        )

    async def github_user(request: Request) -> Response:
        user = bearer_user(request)
        if user is None:
            return JSONResponse({"message": "Requires authentication"}, status_code=401)
        return JSONResponse({"id": int(user.subject), "login": user.login, "name": user.name, "email": None})

    async def github_emails(request: Request) -> Response:
        user = bearer_user(request)
        if user is None:
            return JSONResponse({"message": "Requires authentication"}, status_code=401)
        emails = list(user.other_emails)
        if user.email:
            emails.insert(
                0,
                {
                    "email": user.email,
                    "primary": True,
                    "verified": user.email_verified,
                    "visibility": "private",
                },
            )
        return JSONResponse(emails)

    app = Starlette(
        routes=[
            Route("/google/authorize", authorize("google")),
            Route("/google/token", token("google"), methods=["POST"]),
            Route("/google/userinfo", google_userinfo),
            Route("/google/jwks", jwks),
            Route("/github/authorize", authorize("github")),
            Route("/github/login/oauth/access_token", token("github"), methods=["POST"]),
            Route("/github/api/user", github_user),
            Route("/github/api/user/emails", github_emails),
        ]
    )
    app.state.fake = fake
    return app
