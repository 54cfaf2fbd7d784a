"""HTTP entrypoint of the auth service: ``/auth/*`` (reached through the gateway) and the public JWKS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Cookie, Depends, FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from llmts_api.auth import (
    Jwks,
    LoginRequest,
    OAuthCallbackQuery,
    OAuthProvidersPublic,
    RefreshRequest,
    TokenPairPublic,
    UserCreate,
    UserPublic,
)
from llmts_auth import handlers
from llmts_auth.domain import errors
from llmts_auth.domain.commands import CompleteOAuth, Login, Logout, Refresh, Register, StartOAuth
from llmts_auth.domain.ports import (
    Clock,
    LoginThrottle,
    OAuthProvider,
    OAuthStateRepository,
    PasswordHasher,
    RefreshTokenRepository,
    UserRepository,
)
from llmts_auth.domain.throttle import InFlightPerAddress, ThrottlePolicy
from llmts_auth.domain.users import User
from llmts_auth.handlers import TokenPair, Tokens
from llmts_auth.settings import AuthSettings
from llmts_common.auth import JwksVerifier, Principal, bearer_token
from llmts_common.errors import AppError
from llmts_common.proxies import Network, client_address

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
STATE_COOKIE = "llmts_oauth_state"


@dataclass
class AuthContext:
    """What the routes need; built by ``bootstrap``."""

    settings: AuthSettings
    users: UserRepository
    refresh_tokens: RefreshTokenRepository
    states: OAuthStateRepository
    throttle: LoginThrottle
    throttle_policy: ThrottlePolicy
    hasher: PasswordHasher
    tokens: Tokens
    verifier: JwksVerifier
    jwks: Callable[[], Awaitable[dict[str, Any]]]
    providers: dict[str, OAuthProvider | None]
    clock: Clock
    in_flight: InFlightPerAddress = field(default_factory=lambda: InFlightPerAddress(2))


async def get_context(request: Request) -> AuthContext:
    ctx: AuthContext = request.app.state.auth
    return ctx


Context = Annotated[AuthContext, Depends(get_context)]


async def current_user(ctx: Context, authorization: Annotated[str | None, Header()] = None) -> Principal:
    return await ctx.verifier.verify(bearer_token(authorization))


CurrentUser = Annotated[Principal, Depends(current_user)]


async def address_slot(request: Request, ctx: Context) -> AsyncIterator[None]:
    """One of the caller's address's password-check slots for the duration of the request (429 at once if none)."""
    address = client_ip(request, ctx.settings.trusted_networks) or "unknown"
    if not ctx.in_flight.try_acquire(address):
        raise errors.ConcurrentAttempts()
    try:
        yield
    finally:
        ctx.in_flight.release(address)


PASSWORD_CHECK = [Depends(address_slot)]


# --- answers (the public contract's models, ``llmts_api.auth``) ----------------------------------------------


def user_public(user: User) -> UserPublic:
    return UserPublic(id=user.id, email=user.email, name=user.name, created_at=user.created_at)


def token_pair_public(pair: TokenPair) -> TokenPairPublic:
    return TokenPairPublic(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        token_type=pair.token_type,
        expires_in=pair.expires_in,
    )


# --- error mapping --------------------------------------------------------------------------------------------

STATUS: dict[type[errors.AuthError], int] = {
    errors.InvalidEmail: 422,
    errors.WeakPassword: 422,
    errors.EmailTaken: 409,
    errors.InvalidCredentials: 401,
    errors.LoginThrottled: 429,
    errors.ServerBusy: 429,
    errors.ConcurrentAttempts: 429,
    errors.AccountDisabled: 403,
    errors.NotAdmin: 403,
    errors.ReauthenticationRequired: 403,
    errors.CannotChangeSelf: 409,
    errors.InvalidRefreshToken: 401,
    errors.UserNotFound: 401,
    errors.AccountNotFound: 404,
    errors.UnknownProvider: 404,
    errors.ProviderNotConfigured: 503,
    errors.OAuthStateInvalid: 400,
    errors.OAuthMissingCode: 400,
    errors.OAuthDenied: 400,
    errors.OAuthExchangeFailed: 400,
    errors.InvalidIdToken: 400,
    errors.EmailNotVerified: 403,
    errors.ProviderUnavailable: 502,
}


def to_app_error(exc: errors.AuthError) -> AppError:
    status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="llmts"'
    if isinstance(exc, errors.LoginThrottled | errors.ServerBusy):
        headers["Retry-After"] = str(exc.retry_after)
    return AppError(exc.message, code=exc.code, details=exc.details, status_code=status, headers=headers)


def install_error_mapping(app: FastAPI) -> None:
    @app.exception_handler(errors.AuthError)
    async def _auth_error(_: Request, exc: errors.AuthError) -> JSONResponse:
        err = to_app_error(exc)
        return JSONResponse(err.body(), status_code=err.status_code, headers=err.headers)


def client_ip(request: Request, trusted: Sequence[Network]) -> str | None:
    """The caller's address: X-Forwarded-For is believed only from a trusted proxy (``TRUSTED_PROXIES``: the
    gateway), walking the chain back while the hops are trusted; from any other peer, the peer itself."""
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers.get("x-forwarded-for"), trusted)


def redirect_uri(settings: AuthSettings, provider: str) -> str:
    return f"{settings.oauth_redirect_base_url.rstrip('/')}/auth/oauth/{provider}/callback"


# --- routes ---------------------------------------------------------------------------------------------------

router = APIRouter(tags=["auth"])


@router.post(
    "/auth/register",
    status_code=201,
    response_model=UserPublic,
    summary="Create an account",
    dependencies=PASSWORD_CHECK,
)
async def register(body: UserCreate, request: Request, ctx: Context) -> UserPublic:
    user = await handlers.register(
        Register(
            email=body.email,
            password=body.password,
            name=body.name,
            client_ip=client_ip(request, ctx.settings.trusted_networks),
        ),
        users=ctx.users,
        hasher=ctx.hasher,
        clock=ctx.clock,
        throttle=ctx.throttle,
        throttle_policy=ctx.throttle_policy,
        admin_emails=ctx.settings.admin_email_set,
    )
    return user_public(user)


@router.post(
    "/auth/login",
    response_model=TokenPairPublic,
    summary="Log in with email and password",
    dependencies=PASSWORD_CHECK,
)
async def login(body: LoginRequest, request: Request, ctx: Context) -> JSONResponse:
    pair = await handlers.login(
        Login(
            email=body.email,
            password=body.password,
            client_ip=client_ip(request, ctx.settings.trusted_networks),
        ),
        users=ctx.users,
        hasher=ctx.hasher,
        throttle=ctx.throttle,
        throttle_policy=ctx.throttle_policy,
        tokens=ctx.tokens,
        clock=ctx.clock,
        admin_emails=ctx.settings.admin_email_set,
    )
    return JSONResponse(token_pair_public(pair).model_dump(), headers=NO_STORE)


@router.post("/auth/refresh", response_model=TokenPairPublic, summary="Rotate a refresh token")
async def refresh(body: RefreshRequest, ctx: Context) -> JSONResponse:
    pair = await handlers.refresh(
        Refresh(refresh_token=body.refresh_token), users=ctx.users, tokens=ctx.tokens, clock=ctx.clock
    )
    return JSONResponse(token_pair_public(pair).model_dump(), headers=NO_STORE)


@router.post("/auth/logout", status_code=204, summary="Revoke the refresh-token family")
async def logout(body: RefreshRequest, principal: CurrentUser, ctx: Context) -> Response:
    await handlers.logout(
        Logout(user_id=principal.user_id, refresh_token=body.refresh_token),
        refresh_tokens=ctx.refresh_tokens,
    )
    return Response(status_code=204)


@router.get("/auth/me", response_model=UserPublic, summary="The current user")
async def me(principal: CurrentUser, ctx: Context) -> UserPublic:
    return user_public(await handlers.current_user(principal.user_id, users=ctx.users))


@router.get("/auth/oauth", response_model=OAuthProvidersPublic, summary="The OAuth providers configured here")
async def oauth_providers(ctx: Context) -> OAuthProvidersPublic:
    return OAuthProvidersPublic(providers=sorted(name for name, p in ctx.providers.items() if p is not None))


@router.get("/auth/oauth/{provider}", status_code=302, summary="Start an OAuth login (302 to the provider)")
async def oauth_start(provider: str, ctx: Context) -> RedirectResponse:
    state_ttl = timedelta(seconds=ctx.settings.oauth_state_ttl_seconds)
    url, state = await handlers.start_oauth(
        StartOAuth(provider=provider, redirect_uri=redirect_uri(ctx.settings, provider)),
        providers=ctx.providers,
        states=ctx.states,
        clock=ctx.clock,
        state_ttl=state_ttl,
    )
    response = RedirectResponse(url, status_code=302, headers=NO_STORE)
    # Binds the state to this browser (login CSRF): the callback accepts the state only with this cookie.
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=int(state_ttl.total_seconds()),
        path="/auth/oauth",
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back to us, not on cross-site subrequests
        secure=ctx.settings.oauth_redirect_base_url.startswith("https://"),
    )
    return response


@router.get(
    "/auth/oauth/{provider}/callback",
    response_model=TokenPairPublic,
    summary="OAuth callback: tokens as JSON, or a redirect to the front end with tokens in the fragment",
)
async def oauth_callback(
    provider: str,
    ctx: Context,
    query: Annotated[OAuthCallbackQuery, Query()],
    browser_state: Annotated[str | None, Cookie(alias=STATE_COOKIE, max_length=128)] = None,
) -> Response:
    pair = await handlers.complete_oauth(
        CompleteOAuth(
            provider=provider,
            redirect_uri=redirect_uri(ctx.settings, provider),
            state=query.state,
            code=query.code,
            error=query.error,
            error_description=query.error_description,
            browser_state=browser_state,
        ),
        providers=ctx.providers,
        states=ctx.states,
        users=ctx.users,
        tokens=ctx.tokens,
        clock=ctx.clock,
        admin_emails=ctx.settings.admin_email_set,
    )
    body = token_pair_public(pair).model_dump()
    answer: Response
    if ctx.settings.frontend_url:
        fragment = urlencode({k: str(v) for k, v in body.items()})
        answer = RedirectResponse(
            f"{ctx.settings.frontend_url}#{fragment}", status_code=302, headers=NO_STORE
        )
    else:
        answer = JSONResponse(body, headers=NO_STORE)
    answer.delete_cookie(STATE_COOKIE, path="/auth/oauth", httponly=True, samesite="lax")
    return answer


@router.get("/.well-known/jwks.json", response_model=Jwks, summary="Public keys that verify access tokens")
async def jwks(ctx: Context) -> JSONResponse:
    return JSONResponse(await ctx.jwks(), headers={"Cache-Control": "public, max-age=60"})
