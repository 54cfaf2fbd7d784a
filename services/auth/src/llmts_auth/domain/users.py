"""The user aggregate and email normalisation."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from llmts_auth.domain.errors import InvalidEmail

Provider = Literal["google", "github"]
Role = Literal["user", "admin"]
ROLES: tuple[Role, ...] = ("user", "admin")
PROVIDERS: tuple[Provider, ...] = ("google", "github")
MAX_EMAIL_LENGTH = 254
# Deliberately simple: one "@", no whitespace, a dot in the domain. Deliverability is the provider's business.
_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]{2,}$")


def normalize_email(raw: str) -> str:
    """Trim and lower-case the whole address (we treat local parts case-insensitively, as users expect)."""
    email = raw.strip().lower()
    if not email or len(email) > MAX_EMAIL_LENGTH or not _EMAIL_RE.match(email) or ".." in email:
        raise InvalidEmail("email address is not valid", details={"field": "email"})
    return email


@dataclass(frozen=True)
class Identity:
    """A linked external account (provider + the provider's stable user id)."""

    provider: str
    subject: str


@dataclass(frozen=True)
class User:
    id: str
    email: str
    name: str | None
    created_at: datetime
    password_hash: str | None = field(default=None, repr=False)
    identities: tuple[Identity, ...] = ()
    role: Role = "user"
    disabled: bool = False

    def with_identity(self, identity: Identity) -> User:
        if identity in self.identities:
            return self
        return replace(self, identities=(*self.identities, identity))


@dataclass(frozen=True)
class ExternalProfile:
    """What an OAuth provider told us about the person who logged in."""

    provider: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None = None
