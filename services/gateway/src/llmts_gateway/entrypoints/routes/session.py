"""``/auth/session/*``: the browser session of the web console (``/ui``).

A browser should not hold a refresh token where scripts can read it. These routes keep it in an httpOnly cookie
(``llmts_refresh``: ``SameSite=Strict``, ``Path=/auth/session``, ``Secure`` when the gateway is reached over https)
and answer only the short-lived access token, which the console keeps in memory. CSRF: ``refresh`` and ``logout``
need the header ``X-CSRF-Token`` equal to the ``llmts_csrf`` cookie (double submit; that cookie is readable by the
console's script, also ``SameSite=Strict``); ``adopt`` (tokens of an OAuth redirect into the cookie) needs the header
too — a custom header cannot be sent cross-site without a CORS preflight, which the gateway never grants. The
auth service does the work (``/auth/login``, ``/auth/register``, ``/auth/refresh``, ``/auth/logout``); its errors
are relayed as they are.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Cookie, Header, Request, Response
from fastapi.responses import JSONResponse

from llmts_api.auth import (
    LoginRequest,
    OAuthProvidersPublic,
    RefreshRequest,
    SessionTokenPublic,
    UserCreate,
)
from llmts_api.errors import ErrorBody
from llmts_common.errors import AppError, ServiceUnavailable
from llmts_gateway.deps import Context
from llmts_gateway.entrypoints.routes.auth import _forwarded_for

router = APIRouter(tags=["auth"])

REFRESH_COOKIE = "llmts_refresh"
CSRF_COOKIE = "llmts_csrf"
CSRF_HEADER = "X-CSRF-Token"
SESSION_PATH = "/auth/session"
_RELAYED_HEADERS = ("retry-after", "www-authenticate")
_NO_STORE = {"Cache-Control": "no-store"}

RefreshCookie = Annotated[
    str | None, Cookie(alias=REFRESH_COOKIE, max_length=512, description="Set by login/register/refresh.")
]
CsrfCookie = Annotated[
    str | None, Cookie(alias=CSRF_COOKIE, max_length=128, description="Double-submit token.")
]
CsrfHeader = Annotated[
    str | None, Header(alias=CSRF_HEADER, max_length=128, description="The value of the `llmts_csrf` cookie.")
]


def _errors(**cases: str) -> dict[int | str, dict[str, Any]]:
    return {int(s.lstrip("e")): {"model": ErrorBody, "description": t} for s, t in cases.items()}


_CSRF = "`X-CSRF-Token` missing or not equal to the `llmts_csrf` cookie (`csrf_failed`)."


class CsrfFailed(AppError):
    status_code = 403
    code = "csrf_failed"


def _check_csrf(header: str | None, cookie: str | None) -> None:
    if not header or not cookie or not secrets.compare_digest(header, cookie):
        raise CsrfFailed("the X-CSRF-Token header must equal the llmts_csrf cookie")


def _secure(request: Request, ctx: Context) -> bool:
    return request.url.scheme == "https" or ctx.settings.hsts_max_age_seconds > 0


def _relay(answer: httpx.Response) -> Response:
    """An error of the auth service, as it answered it."""
    headers = {k: v for k, v in answer.headers.items() if k.lower() in _RELAYED_HEADERS}
    return Response(answer.content, answer.status_code, headers=headers, media_type="application/json")


def _session(pair: dict[str, Any], request: Request, ctx: Context, status: int = 200) -> Response:
    """The access token in the body; the refresh token and a fresh CSRF token in cookies."""
    csrf = secrets.token_urlsafe(32)
    body = SessionTokenPublic(
        access_token=pair["access_token"],
        token_type=pair.get("token_type", "bearer"),
        expires_in=pair["expires_in"],
        csrf_token=csrf,
    )
    response = JSONResponse(body.model_dump(), status_code=status, headers=_NO_STORE)
    secure = _secure(request, ctx)
    max_age = ctx.settings.session_cookie_max_age_seconds
    response.set_cookie(
        REFRESH_COOKIE,
        pair["refresh_token"],
        max_age=max_age,
        path=SESSION_PATH,
        httponly=True,
        secure=secure,
        samesite="strict",
    )
    response.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, path="/", secure=secure, samesite="strict")
    return response


def _cleared(request: Request, ctx: Context) -> Response:
    response = Response(status_code=204, headers=_NO_STORE)
    secure = _secure(request, ctx)
    response.delete_cookie(REFRESH_COOKIE, path=SESSION_PATH, httponly=True, secure=secure, samesite="strict")
    response.delete_cookie(CSRF_COOKIE, path="/", secure=secure, samesite="strict")
    return response


async def _auth(ctx: Context, request: Request, path: str, body: dict[str, Any]) -> httpx.Response:
    return await ctx.upstreams.request("auth", "POST", path, json=body, headers=_forwarded_for(request, ctx))


@router.post(
    "/auth/session/login",
    response_model=SessionTokenPublic,
    summary="Console login: the access token in the body, the refresh token in an httpOnly cookie",
    responses=_errors(
        e401="Wrong email or password (`invalid_credentials`).",
        e403="The account is disabled (`account_disabled`).",
        e429="Too many attempts (`too_many_attempts`, `server_busy`); see `Retry-After`.",
        e503="The auth service is unavailable.",
    ),
)
async def session_login(body: LoginRequest, request: Request, ctx: Context) -> Response:
    answer = await _auth(ctx, request, "/auth/login", body.model_dump())
    return _session(answer.json(), request, ctx) if answer.status_code == 200 else _relay(answer)


@router.post(
    "/auth/session/register",
    status_code=201,
    response_model=SessionTokenPublic,
    summary="Console registration: creates the account and signs it in (as /auth/session/login)",
    responses=_errors(
        e409="An account with this email already exists (`email_taken`).",
        e422="Invalid email (`invalid_email`) or weak password (`weak_password`).",
        e429="Too many registrations from this address (`too_many_attempts`); see `Retry-After`.",
        e503="The auth service is unavailable.",
    ),
)
async def session_register(body: UserCreate, request: Request, ctx: Context) -> Response:
    created = await _auth(ctx, request, "/auth/register", body.model_dump(exclude_none=True))
    if created.status_code != 201:
        return _relay(created)
    answer = await _auth(ctx, request, "/auth/login", {"email": body.email, "password": body.password})
    return _session(answer.json(), request, ctx, 201) if answer.status_code == 200 else _relay(answer)


@router.post(
    "/auth/session/refresh",
    response_model=SessionTokenPublic,
    summary="A new access token from the refresh cookie (which is rotated); needs X-CSRF-Token",
    responses=_errors(
        e401="No refresh cookie, or the refresh token is unknown, expired or spent (`invalid_refresh_token`, "
        "`refresh_token_reused`): sign in again.",
        e403=_CSRF,
        e503="The auth service is unavailable.",
    ),
)
async def session_refresh(
    request: Request,
    ctx: Context,
    refresh: RefreshCookie = None,
    csrf: CsrfCookie = None,
    token: CsrfHeader = None,
) -> Response:
    _check_csrf(token, csrf)
    if not refresh:
        raise AppError("no session cookie: sign in", code="invalid_refresh_token", status_code=401)
    answer = await _auth(ctx, request, "/auth/refresh", {"refresh_token": refresh})
    return _session(answer.json(), request, ctx) if answer.status_code == 200 else _relay(answer)


@router.post(
    "/auth/session/adopt",
    response_model=SessionTokenPublic,
    summary="Move the refresh token of an OAuth redirect into the cookie (it is spent: a new pair is issued)",
    responses=_errors(
        e401="Unknown, expired or spent refresh token (`invalid_refresh_token`, `refresh_token_reused`).",
        e403="No `X-CSRF-Token` header (`csrf_failed`).",
        e503="The auth service is unavailable.",
    ),
)
async def session_adopt(
    body: RefreshRequest, request: Request, ctx: Context, token: CsrfHeader = None
) -> Response:
    if not token:
        raise CsrfFailed("the X-CSRF-Token header is required")
    answer = await _auth(ctx, request, "/auth/refresh", {"refresh_token": body.refresh_token})
    return _session(answer.json(), request, ctx) if answer.status_code == 200 else _relay(answer)


@router.post(
    "/auth/session/logout",
    status_code=204,
    summary="Console logout: revokes the refresh-token family and clears the cookies; needs X-CSRF-Token",
    description="Send the access token as `Authorization: Bearer` when you have it: the refresh token's family is "
    "then revoked by the auth service. The cookies are cleared in any case.",
    responses=_errors(e403=_CSRF),
)
async def session_logout(
    request: Request,
    ctx: Context,
    refresh: RefreshCookie = None,
    csrf: CsrfCookie = None,
    token: CsrfHeader = None,
    authorization: Annotated[str | None, Header(max_length=4096)] = None,
) -> Response:
    _check_csrf(token, csrf)
    if refresh and authorization:
        headers = {**_forwarded_for(request, ctx), "authorization": authorization}
        # 401 (expired access token) or 503: the cookie is cleared anyway; the token expires on its own
        with contextlib.suppress(ServiceUnavailable):
            await ctx.upstreams.request(
                "auth", "POST", "/auth/logout", json={"refresh_token": refresh}, headers=headers
            )
    return _cleared(request, ctx)


@router.get(
    "/auth/oauth",
    response_model=OAuthProvidersPublic,
    summary="The OAuth providers configured on this server (start one at /auth/oauth/{provider})",
    responses=_errors(e503="The auth service is unavailable."),
)
async def oauth_providers(request: Request, ctx: Context) -> Response:
    return await ctx.upstreams.forward("auth", request, "/auth/oauth")
