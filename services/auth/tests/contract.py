"""Repository behaviour written once; bound to the in-memory fakes (unit) and to Mongo (integration, connected).

Subclasses provide the fixtures ``users``, ``refresh_tokens``, ``states``, ``throttle`` and ``keys``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from llmts_auth.domain.errors import EmailTaken
from llmts_auth.domain.ports import OAuthState
from llmts_auth.domain.throttle import ThrottleKey, window_bounds
from llmts_auth.domain.tokens import RefreshTokenRecord, RefreshVerdict, SigningKey
from llmts_auth.domain.users import Identity, User
from llmts_common.contracts import UserDeleted, UserDisabled, UserRegistered

NOW = datetime(2026, 11, 28, 12, 0, 7, tzinfo=UTC)


def uid() -> str:
    return uuid.uuid4().hex


def a_user(**kw: Any) -> User:
    defaults: dict[str, Any] = {
        "id": uid(),
        "email": f"user-{uid()[:12]}@example.com",
        "name": "Test User",
        "created_at": NOW,
        "password_hash": "fake$x",
    }
    defaults.update(kw)
    return User(**defaults)


def a_record(**kw: Any) -> RefreshTokenRecord:
    defaults: dict[str, Any] = {
        "token_hash": uid() + uid(),
        "user_id": uid(),
        "family_id": uid(),
        "parent_hash": None,
        "created_at": NOW,
        "expires_at": NOW + timedelta(days=1),
    }
    defaults.update(kw)
    return RefreshTokenRecord(**defaults)


class UsersContract:
    async def test_add_then_read_back(self, users: Any) -> None:
        user = a_user()
        event = UserRegistered(user_id=user.id, email=user.email, registered_at=NOW)
        await users.add(user, events=[event])
        assert await users.get(user.id) == user
        assert await users.by_email(user.email) == user
        assert await users.get(uid()) is None

    async def test_duplicate_email_is_refused(self, users: Any) -> None:
        user = a_user()
        await users.add(user)
        with pytest.raises(EmailTaken):
            await users.add(a_user(email=user.email))

    async def test_identity_link_and_lookup(self, users: Any) -> None:
        user = a_user()
        await users.add(user)
        ident = Identity("github", str(uuid.uuid4().int)[:9])
        assert await users.by_identity(ident) is None
        await users.link_identity(user.id, ident)
        await users.link_identity(user.id, ident)  # idempotent
        found = await users.by_identity(ident)
        assert found is not None
        assert found.id == user.id
        assert found.identities == (ident,)
        assert await users.by_identity(Identity("google", ident.subject)) is None

    async def test_rehash_and_delete(self, users: Any) -> None:
        user = a_user()
        await users.add(user)
        await users.set_password_hash(user.id, "fake$new")
        stored = await users.get(user.id)
        assert stored is not None
        assert stored.password_hash == "fake$new"
        assert await users.delete(user.id) is True
        assert await users.get(user.id) is None
        assert await users.delete(user.id) is False

    async def test_role_disable_and_erase(self, users: Any) -> None:
        user = a_user()
        await users.add(user)
        identity = Identity("github", uid()[:9])
        await users.link_identity(user.id, identity)
        await users.set_role(user.id, "admin")
        await users.set_disabled(
            user.id, True, events=[UserDisabled(user_id=user.id, disabled_at=NOW, by="a")]
        )
        stored = await users.get(user.id)
        assert stored is not None
        assert (stored.role, stored.disabled) == ("admin", True)
        gone = [UserDeleted(user_id=user.id, deleted_at=NOW, by="self")]
        assert await users.erase(user.id, events=gone) is True
        assert await users.erase(user.id, events=gone) is False  # idempotent: already erased
        assert await users.get(user.id) is None
        assert await users.by_email(user.email) is None
        assert await users.by_identity(identity) is None
        await users.add(a_user(email=user.email))  # the address is free again

    async def test_page_is_bounded_and_ordered(self, users: Any) -> None:
        first, total = await users.page(offset=0, limit=2)
        assert len(first) <= 2
        assert total >= len(first)
        rest, _ = await users.page(offset=2, limit=1000)
        assert not {u.id for u in first} & {u.id for u in rest}


class RefreshTokensContract:
    async def test_valid_token_is_spent_once_then_reuse(self, refresh_tokens: Any) -> None:
        rec = a_record()
        await refresh_tokens.add(rec)
        got, verdict = await refresh_tokens.consume(rec.token_hash, now=NOW)
        assert verdict is RefreshVerdict.VALID
        assert got is not None
        assert got.family_id == rec.family_id
        got, verdict = await refresh_tokens.consume(rec.token_hash, now=NOW)
        assert verdict is RefreshVerdict.REUSED
        assert got is not None
        assert got.spent

    async def test_unknown_and_expired(self, refresh_tokens: Any) -> None:
        assert (await refresh_tokens.consume(uid(), now=NOW))[1] is RefreshVerdict.UNKNOWN
        rec = a_record(expires_at=NOW - timedelta(seconds=1))
        await refresh_tokens.add(rec)
        assert (await refresh_tokens.consume(rec.token_hash, now=NOW))[1] is RefreshVerdict.EXPIRED

    async def test_revoke_family_only_touches_that_family(self, refresh_tokens: Any) -> None:
        fam, other = uid(), uid()
        a, b, c = a_record(family_id=fam), a_record(family_id=fam), a_record(family_id=other)
        for r in (a, b, c):
            await refresh_tokens.add(r)
        assert await refresh_tokens.revoke_family(fam) == 2
        assert (await refresh_tokens.consume(a.token_hash, now=NOW))[1] is RefreshVerdict.REVOKED
        assert (await refresh_tokens.consume(b.token_hash, now=NOW))[1] is RefreshVerdict.REVOKED
        assert (await refresh_tokens.consume(c.token_hash, now=NOW))[1] is RefreshVerdict.VALID

    async def test_revoke_user_and_purge(self, refresh_tokens: Any) -> None:
        user = uid()
        r1 = a_record(user_id=user)
        r2 = a_record(user_id=user, expires_at=NOW - timedelta(days=400))
        await refresh_tokens.add(r1)
        await refresh_tokens.add(r2)
        assert await refresh_tokens.revoke_user(user) == 2
        got = await refresh_tokens.get(r1.token_hash)
        assert got is not None
        assert got.revoked
        assert await refresh_tokens.purge_expired(before=NOW - timedelta(days=399)) >= 1
        assert await refresh_tokens.get(r2.token_hash) is None
        assert await refresh_tokens.get(r1.token_hash) is not None


class OAuthStatesContract:
    async def test_single_use(self, states: Any) -> None:
        st = OAuthState(
            uid(), "google", "v" * 64, "n", "http://127.0.0.1:8000/cb", NOW + timedelta(minutes=10)
        )
        await states.add(st)
        assert await states.consume(st.state) == st
        assert await states.consume(st.state) is None

    async def test_purge_expired(self, states: Any) -> None:
        old = OAuthState(uid(), "github", "v" * 64, "n", "http://x/cb", NOW - timedelta(days=30))
        await states.add(old)
        assert await states.purge_expired(before=NOW - timedelta(days=29)) >= 1
        assert await states.consume(old.state) is None


class ThrottleContract:
    async def test_blocks_at_limit_until_window_end(self, throttle: Any) -> None:
        key = ThrottleKey("email", uid()[:32], limit=3)
        for _ in range(2):
            await throttle.record_failure([key], now=NOW)
        assert await throttle.blocked_until([key], now=NOW) is None
        await throttle.record_failure([key], now=NOW)
        _, end = window_bounds(NOW, throttle.policy.window)
        assert await throttle.blocked_until([key], now=NOW) == end
        later = end + timedelta(seconds=1)  # next window
        assert await throttle.blocked_until([key], now=later) is None

    async def test_any_key_blocks_and_clear_resets(self, throttle: Any) -> None:
        email = ThrottleKey("email", uid()[:32], limit=2)
        ip = ThrottleKey("ip", uid()[:32], limit=100)
        await throttle.record_failure([email, ip], now=NOW)
        await throttle.record_failure([email, ip], now=NOW)
        assert await throttle.blocked_until([email, ip], now=NOW) is not None
        assert await throttle.blocked_until([ip], now=NOW) is None
        await throttle.clear(email, now=NOW)
        assert await throttle.blocked_until([email, ip], now=NOW) is None

    async def test_backoff_doubles_after_the_free_failures(self, throttle: Any) -> None:
        key = ThrottleKey("acct_ip", uid()[:32], limit=100, backoff_free=2, backoff_base=timedelta(seconds=1))
        start, _ = window_bounds(NOW, throttle.policy.window)
        t = start + timedelta(seconds=1)
        for _ in range(2):
            await throttle.record_failure([key], now=t)
        assert await throttle.blocked_until([key], now=t) is None
        await throttle.record_failure([key], now=t)  # 3rd: waits 1 s
        assert await throttle.blocked_until([key], now=t) == t + timedelta(seconds=1)
        t2 = t + timedelta(seconds=1)
        assert await throttle.blocked_until([key], now=t2) is None
        await throttle.record_failure([key], now=t2)  # 4th: waits 2 s after the latest failure
        assert await throttle.blocked_until([key], now=t2) == t2 + timedelta(seconds=2)


class SigningKeysContract:
    async def test_add_all_retire_once(self, keys: Any) -> None:
        kid = uid()
        key = SigningKey(
            kid=kid,
            alg="Ed25519",
            public_jwk={"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": kid},
            private_jwk={"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "d": "BBBB", "kid": kid},
            created_at=NOW,
            activated_at=NOW,
        )
        await keys.add(key)
        assert key in await keys.all()
        await keys.retire(kid, publish_until=NOW + timedelta(hours=1))
        await keys.retire(kid, publish_until=NOW + timedelta(hours=5))  # first retirement wins
        stored = next(k for k in await keys.all() if k.kid == kid)
        assert stored.publish_until == NOW + timedelta(hours=1)
