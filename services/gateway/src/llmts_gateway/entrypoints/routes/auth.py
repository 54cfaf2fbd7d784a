"""``/auth/*``: accounts, login, tokens and OAuth, forwarded to the auth service.

Every route is declared explicitly so the public OpenAPI documents its body, answer and errors; the request is
validated here and passed through unchanged (body, query, ``Authorization``) with ``X-Forwarded-For`` extended by
the caller's address, which the auth service uses for per-IP login throttling. ``/auth/me`` and
``/auth/logout`` verify the access token at the gateway first (signature, ``exp``, ``iss``, ``aud`` via the JWKS);
the auth service then checks that the user still exists. Bodies, query parameters and answers are the public
contract's models (``llmts_api.auth``), the same classes the auth service declares; ``SessionPublic`` is the
gateway's own answer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from llmts_api.auth import (
    Jwks,
    LoginRequest,
    OAuthCallbackQuery,
    RefreshRequest,
    TokenPairPublic,
    UserCreate,
    UserPublic,
)
from llmts_api.errors import ErrorBody
from llmts_gateway.deps import Context, CurrentUser

router = APIRouter(tags=["auth"])


def _errors(**cases: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for the OpenAPI: status → the error body and what it means here."""
    return {
        int(status.lstrip("e")): {"model": ErrorBody, "description": text} for status, text in cases.items()
    }


_UNAUTHORIZED = "Missing, malformed, expired or forged access token (with `WWW-Authenticate`)."
_UPSTREAM = "The auth service is unavailable."

Provider = Annotated[str, Path(description="`google` or `github`.", examples=["github"])]


# --- forwarding -----------------------------------------------------------------------------------------------


def _forwarded_for(request: Request) -> dict[str, str]:
    """Append the peer address to X-Forwarded-For; the auth service trusts the entry its nearest proxy added."""
    peer = request.client.host if request.client else ""
    prior = request.headers.get("x-forwarded-for")
    return {"x-forwarded-for": f"{prior}, {peer}" if prior else peer}


async def _forward(ctx: Context, request: Request, path: str) -> Response:
    return await ctx.upstreams.forward("auth", request, path, extra_headers=_forwarded_for(request))


# --- routes ---------------------------------------------------------------------------------------------------


@router.post(
    "/auth/register",
    status_code=201,
    response_model=UserPublic,
    summary="Create an account with email and password",
    responses=_errors(
        e409="An account with this email already exists (`email_taken`).",
        e422="Invalid email, or weak password with the reason in `details.reason` "
        "(`too_short`, `common_password`, `matches_email`, `too_long`).",
        e503=_UPSTREAM,
    ),
)
async def register(_body: UserCreate, request: Request, ctx: Context) -> Response:
    return await _forward(ctx, request, "/auth/register")


@router.post(
    "/auth/login",
    response_model=TokenPairPublic,
    summary="Log in with email and password",
    responses=_errors(
        e401="Wrong email or password: the same answer whether the email exists or not.",
        e429="Too many failed logins for this email or client address; see `Retry-After`.",
        e503=_UPSTREAM,
    ),
)
async def login(_body: LoginRequest, request: Request, ctx: Context) -> Response:
    return await _forward(ctx, request, "/auth/login")


@router.post(
    "/auth/refresh",
    response_model=TokenPairPublic,
    summary="Exchange a refresh token for a new pair (the old one is spent)",
    responses=_errors(
        e401="Unknown, expired or revoked refresh token; a reused (already spent) token revokes its whole "
        "family (`refresh_token_reused`).",
        e503=_UPSTREAM,
    ),
)
async def refresh(_body: RefreshRequest, request: Request, ctx: Context) -> Response:
    return await _forward(ctx, request, "/auth/refresh")


@router.post(
    "/auth/logout",
    status_code=204,
    summary="Log out: revoke the refresh-token family",
    responses=_errors(e401=_UNAUTHORIZED, e503=_UPSTREAM),
)
async def logout(_body: RefreshRequest, _user: CurrentUser, request: Request, ctx: Context) -> Response:
    return await _forward(ctx, request, "/auth/logout")


@router.get(
    "/auth/me",
    response_model=UserPublic,
    summary="The current user",
    responses=_errors(e401=_UNAUTHORIZED + " Also when the account no longer exists.", e503=_UPSTREAM),
)
async def me(_user: CurrentUser, request: Request, ctx: Context) -> Response:
    return await _forward(ctx, request, "/auth/me")


class SessionPublic(BaseModel):
    user_id: str = Field(description="The `sub` of the token: the owner id everywhere.")
    email: str | None = Field(default=None, examples=["ada@example.com"])
    token_id: str | None = Field(default=None, description="The token's `jti`.")
    expires_at: datetime = Field(description="When the access token expires: refresh before then.")


@router.get(
    "/auth/session",
    response_model=SessionPublic,
    summary="The identity in the current access token (answered by the gateway, no upstream call)",
    description="Verifies the bearer token (signature, `exp`, `iss`, `aud` via the JWKS) and returns what it "
    "says. Cheap enough to poll; use `/auth/me` to also check that the account still exists.",
    responses=_errors(e401=_UNAUTHORIZED),
)
async def session(user: CurrentUser) -> SessionPublic:
    return SessionPublic(
        user_id=user.user_id,
        email=user.email,
        token_id=user.token_id,
        expires_at=datetime.fromtimestamp(int(user.claims["exp"]), tz=UTC),
    )


@router.get(
    "/auth/oauth/{provider}",
    status_code=302,
    response_class=Response,
    summary="Start an OAuth login: 302 to the provider (state + PKCE)",
    responses={
        302: {"description": "Redirect to the provider's consent page."},
        **_errors(
            e404="Unknown provider (`unknown_provider`).",
            e503="Provider not configured on this server (`provider_not_configured`), or the auth service is down.",
        ),
    },
)
async def oauth_start(provider: Provider, request: Request, ctx: Context) -> Response:
    return await _forward(ctx, request, f"/auth/oauth/{provider}")


@router.get(
    "/auth/oauth/{provider}/callback",
    response_model=TokenPairPublic,
    summary="OAuth callback: tokens as JSON, or a 302 to the front end with the tokens in the fragment",
    responses={
        302: {"description": "When a front-end URL is configured: redirect with the tokens in the fragment."},
        **_errors(
            e400="State missing, unknown, expired or reused (`invalid_state`); no code (`missing_code`); the "
            "provider refused (`oauth_denied`, `oauth_exchange_failed`) or sent an invalid id_token.",
            e403="The provider did not confirm a verified email address (`email_not_verified`).",
            e404="Unknown provider.",
            e502="The provider is unreachable (`provider_unavailable`).",
            e503="Provider not configured, or the auth service is down.",
        ),
    },
)
async def oauth_callback(
    provider: Provider,
    request: Request,
    ctx: Context,
    # declared for the docs and validated here; the query string is forwarded as is
    _query: Annotated[OAuthCallbackQuery, Query()],
) -> Response:
    return await _forward(ctx, request, f"/auth/oauth/{provider}/callback")


@router.get(
    "/.well-known/jwks.json",
    response_model=Jwks,
    summary="Public keys that verify access tokens (for other systems)",
    responses=_errors(e503=_UPSTREAM),
)
async def jwks(request: Request, ctx: Context) -> Response:
    return await _forward(ctx, request, "/.well-known/jwks.json")
