"""What callers ask the auth service to do (plain values; the HTTP layer builds them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Register:
    email: str
    password: str = field(repr=False)
    name: str | None = None
    client_ip: str | None = None


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
    browser_state: str | None = field(default=None, repr=False)  # the state cookie set at the start


@dataclass(frozen=True)
class ChangePassword:
    user_id: str
    current_password: str | None = field(repr=False)
    new_password: str = field(repr=False)
    token_issued_at: datetime
    client_ip: str | None = None


@dataclass(frozen=True)
class DeleteAccount:
    user_id: str
    password: str | None = field(repr=False)
    token_issued_at: datetime
    client_ip: str | None = None
