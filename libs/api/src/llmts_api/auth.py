"""Auth: accounts, login, tokens, OAuth and the public keys that verify access tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from llmts_api import examples as ex

MAX_EMAIL_CHARS = 320
MAX_PASSWORD_CHARS = 1024


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [ex.USER_CREATE]})

    email: str = Field(
        max_length=MAX_EMAIL_CHARS, examples=["ada@example.com"], description="Trimmed and case-folded."
    )
    password: str = Field(
        max_length=MAX_PASSWORD_CHARS,
        examples=["correct horse battery staple"],
        description="At least 10 characters, not a common password, not the email address.",
    )
    name: str | None = Field(default=None, max_length=200, examples=["Ada Lovelace"])


class UserPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.USER]})
    id: str = Field(description="User id: the `sub` of access tokens and the owner id in every service.")
    email: str = Field(examples=["ada@example.com"])
    name: str | None = Field(examples=["Ada Lovelace"])
    created_at: datetime


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [ex.LOGIN]})

    email: str = Field(max_length=MAX_EMAIL_CHARS, examples=["ada@example.com"])
    password: str = Field(max_length=MAX_PASSWORD_CHARS, examples=["correct horse battery staple"])


class RefreshRequest(BaseModel):
    """Body of ``POST /auth/refresh`` and ``POST /auth/logout``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [ex.REFRESH_REQUEST]})

    refresh_token: str = Field(
        min_length=1, max_length=512, description="The refresh token from login/refresh."
    )


class TokenPairPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.TOKEN_PAIR]})
    access_token: str = Field(description="JWT (Ed25519, `kid`), send as `Authorization: Bearer <token>`.")
    refresh_token: str = Field(description="Opaque and single use: every refresh returns a new one.")
    token_type: str = Field(default="bearer", examples=["bearer"])
    expires_in: int = Field(description="Access-token lifetime in seconds.", examples=[900])


class OAuthCallbackQuery(BaseModel):
    """What the provider appends to the callback URL: ``code`` and ``state``, or ``error``."""

    code: str | None = Field(default=None, max_length=2048)
    state: str | None = Field(default=None, max_length=512)
    error: str | None = Field(default=None, max_length=256, examples=["access_denied"])
    error_description: str | None = Field(default=None, max_length=1024)


class Jwks(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.JWKS]})
    keys: list[dict[str, Any]] = Field(
        description="Public JWKs (OKP/Ed25519) that verify access tokens.",
        examples=[
            [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                    "kid": "k1",
                }
            ]
        ],
    )


class SessionTokenPublic(BaseModel):
    """Answer of the browser-session routes (``/auth/session/*``): the access token only; the refresh token is in
    the httpOnly cookie and never in a body."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": ex.TOKEN_PAIR["access_token"],
                    "token_type": "bearer",
                    "expires_in": 900,
                    "csrf_token": "Jx0cV3nq5m2T1bq8yQeXn0x8m1w9n4b7Rr2dY6kPz0A",
                }
            ]
        }
    )
    access_token: str = Field(description="JWT, send as `Authorization: Bearer <token>`; keep it in memory.")
    token_type: str = Field(default="bearer", examples=["bearer"])
    expires_in: int = Field(description="Access-token lifetime in seconds.", examples=[900])
    csrf_token: str = Field(
        description="The value of the `llmts_csrf` cookie, to send as `X-CSRF-Token` to refresh and logout."
    )


class OAuthProvidersPublic(BaseModel):
    """The OAuth providers configured on this server (the console shows one button per provider)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"providers": ["github"]}]})
    providers: list[str] = Field(examples=[["github"]])
