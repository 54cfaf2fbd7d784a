"""The ports the handlers depend on. Real adapters live in ``adapters/``; unit tests pass in-memory fakes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from llmts_auth.domain.throttle import ThrottleKey
from llmts_auth.domain.tokens import RefreshTokenRecord, RefreshVerdict, SigningKey
from llmts_auth.domain.users import ExternalProfile, Identity, Role, User
from llmts_common.contracts import Message

Clock = Callable[[], datetime]


class UserRepository(Protocol):
    async def add(self, user: User, *, events: Sequence[Message] = ()) -> None:
        """Insert the user and its events atomically (outbox); raise ``EmailTaken`` on a duplicate email."""

    async def get(self, user_id: str) -> User | None: ...

    async def by_email(self, email: str) -> User | None: ...

    async def by_identity(self, identity: Identity) -> User | None: ...

    async def link_identity(self, user_id: str, identity: Identity) -> None: ...

    async def set_password_hash(self, user_id: str, password_hash: str) -> None: ...

    async def delete(self, user_id: str) -> bool: ...

    async def set_role(self, user_id: str, role: Role) -> None: ...

    async def set_disabled(self, user_id: str, disabled: bool, *, events: Sequence[Message] = ()) -> None:
        """Set the flag and queue its events atomically (outbox)."""

    async def erase(self, user_id: str, *, events: Sequence[Message] = ()) -> bool:
        """Remove the account's data for good (email freed, identities unlinked) and queue its events atomically;
        False when there was no such (live) account."""

    async def page(self, *, offset: int, limit: int) -> tuple[list[User], int]:
        """Live accounts, oldest first, and how many there are."""


class RefreshTokenRepository(Protocol):
    async def add(self, record: RefreshTokenRecord) -> None: ...

    async def consume(
        self, token_hash: str, *, now: datetime
    ) -> tuple[RefreshTokenRecord | None, RefreshVerdict]:
        """Atomically mark the token spent if it is valid; otherwise say why not (without changing it)."""

    async def get(self, token_hash: str) -> RefreshTokenRecord | None: ...

    async def revoke_family(self, family_id: str) -> int: ...

    async def revoke_user(self, user_id: str) -> int: ...

    async def purge_expired(self, *, before: datetime) -> int: ...


@dataclass(frozen=True)
class OAuthState:
    state: str
    provider: str
    code_verifier: str
    nonce: str
    redirect_uri: str
    expires_at: datetime


class OAuthStateRepository(Protocol):
    async def add(self, state: OAuthState) -> None: ...

    async def consume(self, state: str) -> OAuthState | None:
        """Remove and return the state (single use)."""

    async def purge_expired(self, *, before: datetime) -> int: ...


class LoginThrottle(Protocol):
    async def blocked_until(self, keys: Sequence[ThrottleKey], *, now: datetime) -> datetime | None:
        """The end of the current window if any counter is at its limit, else None."""

    async def record_failure(self, keys: Sequence[ThrottleKey], *, now: datetime) -> None: ...

    async def clear(self, key: ThrottleKey, *, now: datetime) -> None: ...

    async def purge_expired(self, *, before: datetime) -> int: ...


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        """(matches, a new hash when the stored one uses outdated parameters)."""

    async def dummy_verify(self, password: str) -> None:
        """Spend the same time as a real verify (login for an unknown email)."""


class SigningKeyStore(Protocol):
    async def all(self) -> list[SigningKey]: ...

    async def add(self, key: SigningKey) -> None: ...

    async def retire(self, kid: str, *, publish_until: datetime) -> None: ...


class TokenSigner(Protocol):
    async def sign(self, claims: dict[str, Any]) -> str: ...


class OAuthProvider(Protocol):
    name: str

    def authorization_url(self, *, state: str, code_verifier: str, nonce: str, redirect_uri: str) -> str: ...

    async def fetch_profile(
        self, *, code: str, code_verifier: str, nonce: str, redirect_uri: str
    ) -> ExternalProfile: ...
