"""``/auth/*``: accounts, login, tokens and OAuth, forwarded to the auth service.

Every route is declared explicitly so the public OpenAPI documents its body, answer and errors; the request is
validated here and passed through unchanged (body, query, ``Authorization``) with ``X-Forwarded-For`` set to the
caller's address (the TCP peer, or the ingress's header when the peer is in ``TRUSTED_PROXIES``), which the auth
service uses for its per-address throttles. Only the OAuth callback forwards a cookie (the state cookie). ``/auth/me`` and
``/auth/logout`` verify the access token at the gateway first (signature, ``exp``, ``iss``, ``aud`` via the JWKS);
the auth service then checks that the user still exists. Bodies, query parameters and answers are the public
contract's models (``llmts_api.auth``), the same classes the auth service declares; ``SessionPublic`` is the
gateway's own answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Cookie, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from llmts_api import examples as ex
from llmts_api.admin import ChangePasswordRequest, DeleteAccountRequest
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
from llmts_common.proxies import Network, client_address
from llmts_gateway.deps import Context, CurrentUser

router = APIRouter(tags=["auth"])


def _errors(**cases: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for the OpenAPI: status → the error body and what it means here."""
    return {
        int(status.lstrip("e")): {"model": ErrorBody, "description": text} for status, text in cases.items()
    }


_UNAUTHORIZED = (
    "Missing (`unauthorized`), malformed, expired or forged (`invalid_token`) access token "
    "(with `WWW-Authenticate`)."
)
_UPSTREAM = "The auth service is unavailable."

Provider = Annotated[str, Path(description="`google` or `github`.", examples=["github"])]
STATE_COOKIE = "llmts_oauth_state"


# --- forwarding -----------------------------------------------------------------------------------------------


def client_ip(request: Request, trusted: Sequence[Network]) -> str:
    """The caller's address: the TCP peer, or what X-Forwarded-For says when the peer is a trusted proxy
    (``TRUSTED_PROXIES``, an ingress); a client cannot choose its address by sending the header itself."""
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers.get("x-forwarded-for"), trusted) or ""


def _forwarded_for(request: Request, ctx: Context) -> dict[str, str]:
    """X-Forwarded-For for the auth service: exactly the client address we determined (its per-address login and
    registration throttles use it; it believes the header only from the gateway's addresses)."""
    return {"x-forwarded-for": client_ip(request, ctx.settings.trusted_networks)}


async def _forward(ctx: Context, request: Request, path: str, **extra: str) -> Response:
    return await ctx.upstreams.forward(
        "auth", request, path, extra_headers={**_forwarded_for(request, ctx), **extra}
    )


# --- routes ---------------------------------------------------------------------------------------------------


@router.post(
    "/auth/register",
    status_code=201,
    response_model=UserPublic,
    summary="Create an account with email and password",
    responses=_errors(
        e409="An account with this email already exists (`email_taken`).",
        e422="Invalid email (`invalid_email`), or weak password (`weak_password`) with the reason in "
        "`details.reason` "
        "(`too_short`, `common_password`, `matches_email`, `too_long`).",
        e429="Too many registration attempts from this address (`too_many_attempts`), or the server is busy "
        "(`server_busy`); see `Retry-After`.",
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
        e401="Wrong email or password (`invalid_credentials`): the same answer whether the email exists "
        "or not.",
        e403="Right password, but the account is disabled (`account_disabled`).",
        e429="Too many failed logins of this account from this address (exponential backoff) or from this "
        "address (`too_many_attempts`), or the server is busy hashing (`server_busy`); see `Retry-After`. "
        "Another address is not affected.",
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
        e401="Unknown, expired or revoked refresh token (`invalid_refresh_token`); a reused (already spent) token "
        "revokes its whole "
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


@router.post(
    "/auth/password",
    response_model=TokenPairPublic,
    summary="Change the password: every other session ends (their refresh tokens are revoked)",
    responses=_errors(
        e401=_UNAUTHORIZED,
        e403="Wrong or missing current password (`reauthentication_required`), or the account is disabled.",
        e422="Weak new password (`weak_password`), with the reason in `details.reason`.",
        e429="Too many wrong passwords from this address (`too_many_attempts`), or the server is busy hashing "
        "(`server_busy`); see `Retry-After`.",
        e503=_UPSTREAM,
    ),
)
async def change_password(
    _body: ChangePasswordRequest, _user: CurrentUser, request: Request, ctx: Context
) -> Response:
    return await _forward(ctx, request, "/auth/password")


@router.delete(
    "/auth/me",
    status_code=204,
    summary="Erase my account: templates, jobs, items and exports are deleted by every service",
    description="Needs the password in the body (an account without one, created through OAuth: an access token "
    "issued in the last 5 minutes — log in again first). The account is gone at once; the other services forget "
    "the user's data when they consume `UserDeleted` (seconds).",
    responses=_errors(
        e401=_UNAUTHORIZED,
        e403="Wrong or missing password; without a password (OAuth-only account), a token older than 5 minutes "
        "(`reauthentication_required`).",
        e429="Too many wrong passwords from this address (`too_many_attempts`); see `Retry-After`.",
        e503=_UPSTREAM,
    ),
)
async def delete_me(
    _user: CurrentUser,
    request: Request,
    ctx: Context,
    _body: Annotated[DeleteAccountRequest | None, Body()] = None,
) -> Response:
    return await _forward(ctx, request, "/auth/me")


class SessionPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.SESSION]})
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
        302: {
            "description": "Redirect to the provider's consent page; sets the short-lived HttpOnly, "
            "SameSite=Lax cookie `llmts_oauth_state` that binds the state to this browser."
        },
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
            e400="State missing, unknown, expired or reused, or not the one this browser started (no or another "
            "`llmts_oauth_state` cookie: `invalid_state`); no code (`missing_code`); the "
            "provider refused (`oauth_denied`, `oauth_exchange_failed`) or sent an invalid id_token.",
            e403="The provider did not confirm a verified email address (`email_not_verified`).",
            e404="Unknown provider (`unknown_provider`).",
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
    state_cookie: Annotated[
        str | None,
        Cookie(alias=STATE_COOKIE, max_length=128, description="Set by the start of the login (login CSRF)."),
    ] = None,
) -> Response:
    extra = {"cookie": f"{STATE_COOKIE}={state_cookie}"} if state_cookie else {}
    return await _forward(ctx, request, f"/auth/oauth/{provider}/callback", **extra)


@router.get(
    "/.well-known/jwks.json",
    response_model=Jwks,
    summary="Public keys that verify access tokens (for other systems)",
    responses=_errors(e503=_UPSTREAM),
)
async def jwks(request: Request, ctx: Context) -> Response:
    return await _forward(ctx, request, "/.well-known/jwks.json")
