"""In-memory implementations of the auth service's ports (fakes, not mocks): unit tests assert on their state."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from llmts_auth.domain.errors import EmailTaken
from llmts_auth.domain.ports import OAuthState
from llmts_auth.domain.throttle import ThrottleKey, ThrottlePolicy, window_bounds
from llmts_auth.domain.tokens import RefreshTokenRecord, RefreshVerdict, SigningKey, judge_refresh
from llmts_auth.domain.users import ExternalProfile, Identity, Role, User
from llmts_common.contracts import Message


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        # real time by default: tokens signed here are verified by JOSE code that reads the system clock
        self.now = start or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


class InMemoryUsers:
    def __init__(self) -> None:
        self.rows: dict[str, User] = {}
        self.events: list[Message] = []

    async def add(self, user: User, *, events: Sequence[Message] = ()) -> None:
        if any(u.email == user.email for u in self.rows.values()):
            raise EmailTaken("an account with this email already exists")
        self.rows[user.id] = user
        self.events.extend(events)

    async def get(self, user_id: str) -> User | None:
        return self.rows.get(user_id)

    async def by_email(self, email: str) -> User | None:
        return next((u for u in self.rows.values() if u.email == email), None)

    async def by_identity(self, identity: Identity) -> User | None:
        return next((u for u in self.rows.values() if identity in u.identities), None)

    async def link_identity(self, user_id: str, identity: Identity) -> None:
        if user_id in self.rows:
            self.rows[user_id] = self.rows[user_id].with_identity(identity)

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        if user_id in self.rows:
            self.rows[user_id] = replace(self.rows[user_id], password_hash=password_hash)

    async def delete(self, user_id: str) -> bool:
        return self.rows.pop(user_id, None) is not None

    async def set_role(self, user_id: str, role: Role) -> None:
        if user_id in self.rows:
            self.rows[user_id] = replace(self.rows[user_id], role=role)

    async def set_disabled(self, user_id: str, disabled: bool, *, events: Sequence[Message] = ()) -> None:
        if user_id in self.rows:
            self.rows[user_id] = replace(self.rows[user_id], disabled=disabled)
            self.events.extend(events)

    async def erase(self, user_id: str, *, events: Sequence[Message] = ()) -> bool:
        if self.rows.pop(user_id, None) is None:
            return False
        self.events.extend(events)
        return True

    async def page(self, *, offset: int, limit: int) -> tuple[list[User], int]:
        rows = sorted(self.rows.values(), key=lambda u: (u.created_at, u.id))
        return rows[offset : offset + limit], len(rows)


class InMemoryRefreshTokens:
    def __init__(self) -> None:
        self.rows: dict[str, RefreshTokenRecord] = {}

    async def add(self, record: RefreshTokenRecord) -> None:
        assert record.token_hash not in self.rows
        self.rows[record.token_hash] = record

    async def consume(
        self, token_hash: str, *, now: datetime
    ) -> tuple[RefreshTokenRecord | None, RefreshVerdict]:
        record = self.rows.get(token_hash)
        verdict = judge_refresh(record, now=now)
        if verdict is RefreshVerdict.VALID and record is not None:
            self.rows[token_hash] = replace(record, spent=True)
        return record, verdict

    async def get(self, token_hash: str) -> RefreshTokenRecord | None:
        return self.rows.get(token_hash)

    async def revoke_family(self, family_id: str) -> int:
        n = 0
        for h, r in list(self.rows.items()):
            if r.family_id == family_id and not r.revoked:
                self.rows[h] = replace(r, revoked=True)
                n += 1
        return n

    async def revoke_user(self, user_id: str) -> int:
        n = 0
        for h, r in list(self.rows.items()):
            if r.user_id == user_id and not r.revoked:
                self.rows[h] = replace(r, revoked=True)
                n += 1
        return n

    async def purge_expired(self, *, before: datetime) -> int:
        gone = [h for h, r in self.rows.items() if r.expires_at < before]
        for h in gone:
            del self.rows[h]
        return len(gone)


class InMemoryOAuthStates:
    def __init__(self) -> None:
        self.rows: dict[str, OAuthState] = {}

    async def add(self, state: OAuthState) -> None:
        self.rows[state.state] = state

    async def consume(self, state: str) -> OAuthState | None:
        return self.rows.pop(state, None)

    async def purge_expired(self, *, before: datetime) -> int:
        gone = [k for k, s in self.rows.items() if s.expires_at < before]
        for k in gone:
            del self.rows[k]
        return len(gone)


class InMemoryThrottle:
    def __init__(self, policy: ThrottlePolicy) -> None:
        self.policy = policy
        self.counts: dict[str, tuple[int, datetime, datetime]] = {}  # id → (count, last failure, window end)

    def _id(self, key: ThrottleKey, now: datetime) -> tuple[str, datetime]:
        start, end = window_bounds(now, self.policy.window)
        return f"{key.scope}:{key.key}:{int(start.timestamp())}", end

    async def blocked_until(self, keys: Sequence[ThrottleKey], *, now: datetime) -> datetime | None:
        latest: datetime | None = None
        for key in keys:
            entry = self.counts.get(self._id(key, now)[0])
            if entry is None:
                continue
            until = key.blocked_until(*entry)
            if until is not None and until > now and (latest is None or until > latest):
                latest = until
        return latest

    async def record_failure(self, keys: Sequence[ThrottleKey], *, now: datetime) -> None:
        for key in keys:
            doc_id, end = self._id(key, now)
            count, last, _ = self.counts.get(doc_id, (0, now, end))
            self.counts[doc_id] = (count + 1, max(last, now), end)

    async def clear(self, key: ThrottleKey, *, now: datetime) -> None:
        self.counts.pop(self._id(key, now)[0], None)

    async def purge_expired(self, *, before: datetime) -> int:
        gone = [k for k, (_, _, end) in self.counts.items() if end < before]
        for k in gone:
            del self.counts[k]
        return len(gone)


class InMemorySigningKeys:
    def __init__(self) -> None:
        self.rows: dict[str, SigningKey] = {}

    async def all(self) -> list[SigningKey]:
        return list(self.rows.values())

    async def add(self, key: SigningKey) -> None:
        self.rows[key.kid] = key

    async def retire(self, kid: str, *, publish_until: datetime) -> None:
        key = self.rows.get(kid)
        if key is not None and key.publish_until is None:
            self.rows[kid] = replace(key, publish_until=publish_until)


class FakeHasher:
    """Deterministic and fast; ``verify_calls`` proves the dummy verify runs for unknown emails."""

    def __init__(self, *, outdated_prefix: str | None = None) -> None:
        self.verify_calls = 0
        self.dummy_calls = 0
        self.outdated_prefix = outdated_prefix

    async def hash(self, password: str) -> str:
        return "fake$" + hashlib.sha256(password.encode()).hexdigest()

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        self.verify_calls += 1
        digest = hashlib.sha256(password.encode()).hexdigest()
        if self.outdated_prefix and password_hash == self.outdated_prefix + digest:
            return True, await self.hash(password)
        return password_hash == "fake$" + digest, None

    async def dummy_verify(self, password: str) -> None:
        self.dummy_calls += 1


@dataclass
class FakeProvider:
    """An OAuth provider port that answers a configured profile (the HTTP side is tested against tests/fakes)."""

    name: str
    profile: ExternalProfile | None = None
    seen: list[dict[str, Any]] | None = None

    def authorization_url(self, *, state: str, code_verifier: str, nonce: str, redirect_uri: str) -> str:
        return f"https://{self.name}.example/authorize?state={state}&redirect_uri={redirect_uri}"

    async def fetch_profile(
        self, *, code: str, code_verifier: str, nonce: str, redirect_uri: str
    ) -> ExternalProfile:
        if self.seen is not None:
            self.seen.append({"code": code, "code_verifier": code_verifier, "nonce": nonce})
        assert self.profile is not None
        return self.profile
