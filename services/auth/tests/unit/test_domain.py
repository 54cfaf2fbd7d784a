"""Pure domain rules: email normalisation, password policy, token claims, refresh verdicts, key rotation, windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from llmts_auth.domain.errors import InvalidEmail, WeakPassword
from llmts_auth.domain.passwords import COMMON_PASSWORDS, MIN_LENGTH, check_password
from llmts_auth.domain.throttle import (
    ThrottleKey,
    ThrottlePolicy,
    login_keys,
    register_key,
    retry_after_seconds,
    window_bounds,
)
from llmts_auth.domain.tokens import (
    RefreshTokenRecord,
    RefreshVerdict,
    SigningKey,
    TokenPolicy,
    access_claims,
    active_key,
    child_record,
    hash_refresh_token,
    judge_refresh,
    new_refresh_token,
    retirement_time,
)
from llmts_auth.domain.users import Identity, User, normalize_email

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ada@Example.COM", "ada@example.com"),
        ("  ada@example.com\t", "ada@example.com"),
        ("ADA.LOVELACE+tag@sub.example.org", "ada.lovelace+tag@sub.example.org"),
    ],
)
def test_email_is_trimmed_and_case_folded(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "   ", "no-at-sign", "a@b", "a@@b.com", "a b@c.com", "a@b..com", "x" * 250 + "@e.com"]
)
def test_invalid_emails_are_refused(raw: str) -> None:
    with pytest.raises(InvalidEmail):
        normalize_email(raw)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "too_short"),
        ("x" * (MIN_LENGTH - 1), "too_short"),
        ("password123", "common_password"),
        ("QWERTYUIOP", "common_password"),
        ("ada@example.com", "matches_email"),
        ("ADA@EXAMPLE.COM", "matches_email"),
        ("y" * 257, "too_long"),
    ],
)
def test_password_policy_gives_the_reason(password: str, reason: str) -> None:
    with pytest.raises(WeakPassword) as err:
        check_password(password, email="ada@example.com")
    assert err.value.details["reason"] == reason


def test_local_part_as_password_is_refused_when_long_enough() -> None:
    with pytest.raises(WeakPassword):
        check_password("ada.lovelace1815", email="ada.lovelace1815@example.com")


def test_good_passwords_pass() -> None:
    check_password("correct horse battery staple", email="ada@example.com")
    check_password("x" * MIN_LENGTH, email="ada@example.com")


def test_common_list_only_holds_entries_the_length_rule_misses() -> None:
    assert all(len(p) >= MIN_LENGTH for p in COMMON_PASSWORDS)


def test_access_claims() -> None:
    user = User(id="u1", email="ada@example.com", name=None, created_at=NOW)
    policy = TokenPolicy(issuer="llmts-auth", audience="llmts", access_ttl=timedelta(minutes=15))
    claims = access_claims(user, policy=policy, now=NOW, jti="j1")
    assert claims == {
        "iss": "llmts-auth",
        "aud": "llmts",
        "sub": "u1",
        "iat": int(NOW.timestamp()),
        "nbf": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + 900,
        "jti": "j1",
        "typ": "access",
        "email": "ada@example.com",
        "role": "user",
    }


def test_refresh_tokens_are_random_and_hashed() -> None:
    a, b = new_refresh_token(), new_refresh_token()
    assert a != b
    assert len(a) >= 43
    assert hash_refresh_token(a) != a
    assert len(hash_refresh_token(a)) == 64
    assert hash_refresh_token(a) == hash_refresh_token(a)


def _record(**kw: object) -> RefreshTokenRecord:
    base: dict[str, object] = {
        "token_hash": "h",
        "user_id": "u",
        "family_id": "f",
        "parent_hash": None,
        "created_at": NOW,
        "expires_at": NOW + timedelta(days=1),
    }
    base.update(kw)
    return RefreshTokenRecord(**base)  # type: ignore[arg-type]


def test_refresh_verdicts() -> None:
    assert judge_refresh(None, now=NOW) is RefreshVerdict.UNKNOWN
    assert judge_refresh(_record(), now=NOW) is RefreshVerdict.VALID
    assert judge_refresh(_record(spent=True), now=NOW) is RefreshVerdict.REUSED
    assert judge_refresh(_record(expires_at=NOW), now=NOW) is RefreshVerdict.EXPIRED
    # a revoked family stays revoked, even for a spent token (no second revocation storm)
    assert judge_refresh(_record(spent=True, revoked=True), now=NOW) is RefreshVerdict.REVOKED


def test_rotation_keeps_the_family_and_links_the_parent() -> None:
    policy = TokenPolicy(issuer="i", audience="a", refresh_ttl=timedelta(days=30))
    first = child_record(None, token_hash="h1", user_id="u", family_id="fam", now=NOW, policy=policy)
    assert (first.family_id, first.parent_hash) == ("fam", None)
    assert first.expires_at == NOW + timedelta(days=30)
    second = child_record(first, token_hash="h2", user_id="u", family_id="ignored", now=NOW, policy=policy)
    assert (second.family_id, second.parent_hash) == ("fam", "h1")


def _key(kid: str, activated: datetime, until: datetime | None = None) -> SigningKey:
    return SigningKey(
        kid=kid,
        alg="Ed25519",
        public_jwk={"kid": kid},
        private_jwk={"kid": kid, "d": "secret"},
        created_at=activated,
        activated_at=activated,
        publish_until=until,
    )


def test_active_key_is_the_newest_activated_and_published() -> None:
    old = _key("old", NOW - timedelta(days=3))
    assert active_key([old], now=NOW) == old
    new = _key("new", NOW + timedelta(seconds=30))  # published, not yet signing
    old_retired = _key("old", NOW - timedelta(days=3), until=NOW + timedelta(minutes=20))
    assert active_key([old_retired, new], now=NOW) == old_retired
    assert active_key([old_retired, new], now=NOW + timedelta(seconds=31)) == new
    assert active_key([old_retired], now=NOW + timedelta(minutes=21)) is None


def test_retirement_outlives_every_token_of_the_old_key() -> None:
    new = _key("new", NOW)
    until = retirement_time(new, access_ttl=timedelta(minutes=15), margin=timedelta(minutes=1))
    assert until == NOW + timedelta(minutes=16)


def test_private_key_never_in_repr() -> None:
    assert "secret" not in repr(_key("k", NOW))
    user = User(id="u", email="e@x.io", name=None, created_at=NOW, password_hash="$argon2id$v=19$abc")
    assert "argon2" not in repr(user)


def test_throttle_windows_and_keys() -> None:
    policy = ThrottlePolicy(
        max_failures_per_account_ip=20, max_failures_per_ip=50, window=timedelta(minutes=15)
    )
    start, end = window_bounds(NOW + timedelta(minutes=7), policy.window)
    assert (start, end) == (NOW, NOW + timedelta(minutes=15))
    assert retry_after_seconds(NOW + timedelta(minutes=7), end) == 480
    assert retry_after_seconds(end, end) == 1
    keys = login_keys(policy, email="ada@example.com", client_ip="10.0.0.1")
    assert [(k.scope, k.limit) for k in keys] == [("acct_ip", 20), ("ip", 50)]
    assert "ada" not in keys[0].key  # hashed, never stored in clear
    other = login_keys(policy, email="ada@example.com", client_ip="10.0.0.2")
    assert other[0].key != keys[0].key  # another address: another account counter (no owner lock-out)
    assert register_key(policy, client_ip="10.0.0.1").scope == "register_ip"


def test_backoff_doubles_then_caps_and_the_limit_closes_the_window() -> None:
    key = ThrottleKey(
        "acct_ip",
        "k",
        limit=10,
        backoff_free=3,
        backoff_base=timedelta(seconds=1),
        backoff_cap=timedelta(seconds=5),
    )
    end = NOW + timedelta(minutes=15)
    assert key.blocked_until(3, NOW, end) is None
    waits = [key.blocked_until(n, NOW, end) for n in (4, 5, 6, 7)]
    assert waits == [NOW + timedelta(seconds=s) for s in (1, 2, 4, 5)]
    assert key.blocked_until(10, NOW, end) == end


def test_user_links_an_identity_once() -> None:
    user = User(id="u", email="e@x.io", name=None, created_at=NOW)
    ident = Identity("github", "42")
    linked = user.with_identity(ident)
    assert linked.identities == (ident,)
    assert linked.with_identity(ident) is linked
