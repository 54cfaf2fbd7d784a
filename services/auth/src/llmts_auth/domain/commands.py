"""What callers ask the auth service to do (plain values; the HTTP layer builds them)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Register:
    email: str
    password: str = field(repr=False)
    name: str | None = None


@dataclass(frozen=True)
class Login:
    email: str
    password: str = field(repr=False)
    client_ip: str | None = None


@dataclass(frozen=True)
class Refresh:
    refresh_token: str = field(repr=False)


@dataclass(frozen=True)
class Logout:
    user_id: str
    refresh_token: str = field(repr=False)


@dataclass(frozen=True)
class StartOAuth:
    provider: str
    redirect_uri: str


@dataclass(frozen=True)
class CompleteOAuth:
    provider: str
    redirect_uri: str
    state: str | None = None
    code: str | None = field(default=None, repr=False)
    error: str | None = None
    error_description: str | None = None
