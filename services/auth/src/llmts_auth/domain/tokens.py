"""Token rules: access-token claims, refresh-token rotation and reuse detection, signing-key rotation."""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from llmts_auth.domain.users import User

ACCESS_TOKEN_TYPE = "access"  # noqa: S105 - the `typ` claim value, not a secret


@dataclass(frozen=True)
class TokenPolicy:
    issuer: str
    audience: str
    access_ttl: timedelta = timedelta(minutes=15)
    refresh_ttl: timedelta = timedelta(days=30)


def access_claims(user: User, *, policy: TokenPolicy, now: datetime, jti: str) -> dict[str, Any]:
    """The claims of an access token: who (``sub`` = user id), for whom (``aud``), until when (``exp``)."""
    issued = int(now.timestamp())
    return {
        "iss": policy.issuer,
        "aud": policy.audience,
        "sub": user.id,
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(policy.access_ttl.total_seconds()),
        "jti": jti,
        "typ": ACCESS_TOKEN_TYPE,
        "email": user.email,
        "role": user.role,
    }


# --- refresh tokens -------------------------------------------------------------------------------------------


def new_refresh_token() -> str:
    """An opaque random value (256 bits); only its hash is ever stored."""
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RefreshTokenRecord:
    """A stored refresh token. ``family_id`` ties every token rotated from one login together."""

    token_hash: str
    user_id: str
    family_id: str
    parent_hash: str | None
    created_at: datetime
    expires_at: datetime
    spent: bool = False
    revoked: bool = False


class RefreshVerdict(enum.Enum):
    VALID = "valid"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"
    REUSED = "reused"  # already spent: someone replays a rotated token → revoke the whole family


def judge_refresh(record: RefreshTokenRecord | None, *, now: datetime) -> RefreshVerdict:
    """What presenting this token means. Order matters: a revoked family stays revoked, a spent token is reuse."""
    if record is None:
        return RefreshVerdict.UNKNOWN
    if record.revoked:
        return RefreshVerdict.REVOKED
    if record.spent:
        return RefreshVerdict.REUSED
    if record.expires_at <= now:
        return RefreshVerdict.EXPIRED
    return RefreshVerdict.VALID


def child_record(
    parent: RefreshTokenRecord | None,
    *,
    token_hash: str,
    user_id: str,
    family_id: str,
    now: datetime,
    policy: TokenPolicy,
) -> RefreshTokenRecord:
    """The record of a freshly issued refresh token (new family on login, same family on rotation)."""
    return RefreshTokenRecord(
        token_hash=token_hash,
        user_id=user_id,
        family_id=parent.family_id if parent else family_id,
        parent_hash=parent.token_hash if parent else None,
        created_at=now,
        expires_at=now + policy.refresh_ttl,
    )


# --- signing keys ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """An asymmetric signing key. ``private_jwk`` never leaves the auth service (not in repr, logs or answers)."""

    kid: str
    alg: str
    public_jwk: dict[str, Any]
    private_jwk: dict[str, Any] = field(repr=False)
    created_at: datetime
    activated_at: datetime
    publish_until: datetime | None = None  # None = published (and usable) until a rotation retires it

    def published_at(self, now: datetime) -> bool:
        return self.publish_until is None or self.publish_until > now


def active_key(keys: list[SigningKey], *, now: datetime) -> SigningKey | None:
    """The key that signs now: the most recently activated one among those activated and still published.

    A key created by a rotation with an activation delay is published first and signs only later; until then
    the previous key (already given its ``publish_until``) keeps signing.
    """
    usable = [k for k in keys if k.activated_at <= now and k.published_at(now)]
    if not usable:
        return None
    return max(usable, key=lambda k: (k.activated_at, k.kid))


def retirement_time(new_key: SigningKey, *, access_ttl: timedelta, margin: timedelta) -> datetime:
    """When a key replaced by ``new_key`` may leave the JWKS: after every token it signed has expired.

    ``margin`` covers replicas that still sign with their cached copy of the old key, and clock leeway.
    """
    return new_key.activated_at + access_ttl + margin
