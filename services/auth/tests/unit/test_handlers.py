"""Use cases against in-memory fakes: registration, login and throttling, refresh rotation and reuse, OAuth
linking rules, signing-key rotation. Real JOSE (no I/O), no mocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from services.auth.tests.fakes import (
    FakeClock,
    FakeHasher,
    FakeProvider,
    InMemoryOAuthStates,
    InMemoryRefreshTokens,
    InMemorySigningKeys,
    InMemoryThrottle,
    InMemoryUsers,
)

from llmts_auth import handlers
from llmts_auth.adapters.jose import JoseTokenSigner, generate_ed25519_key
from llmts_auth.domain import errors
from llmts_auth.domain.commands import CompleteOAuth, Login, Logout, Refresh, Register, StartOAuth
from llmts_auth.domain.throttle import ThrottlePolicy
from llmts_auth.domain.tokens import TokenPolicy, hash_refresh_token
from llmts_auth.domain.users import ExternalProfile, Identity
from llmts_auth.handlers import Tokens
from llmts_common.auth import JwksVerifier
from llmts_common.contracts import UserRegistered
from llmts_common.errors import Unauthorized

pytestmark = pytest.mark.unit

PASSWORD = "correct horse battery"
ALG = ["Ed25519"]


@dataclass
class World:
    clock: FakeClock = field(default_factory=FakeClock)
    users: InMemoryUsers = field(default_factory=InMemoryUsers)
    refresh_tokens: InMemoryRefreshTokens = field(default_factory=InMemoryRefreshTokens)
    states: InMemoryOAuthStates = field(default_factory=InMemoryOAuthStates)
    keys: InMemorySigningKeys = field(default_factory=InMemorySigningKeys)
    hasher: FakeHasher = field(default_factory=FakeHasher)
    policy: TokenPolicy = field(default_factory=lambda: TokenPolicy(issuer="llmts-auth", audience="llmts"))
    throttle_policy: ThrottlePolicy = field(
        default_factory=lambda: ThrottlePolicy(
            max_failures_per_account_ip=6, max_failures_per_ip=5, backoff_free=3
        )
    )
    providers: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.throttle = InMemoryThrottle(self.throttle_policy)
        self.signer = JoseTokenSigner(self.keys, clock=self.clock, cache_seconds=0)
        self.tokens = Tokens(signer=self.signer, refresh_tokens=self.refresh_tokens, policy=self.policy)

    async def start(self) -> World:
        await handlers.ensure_signing_key(keys=self.keys, generate=generate_ed25519_key, clock=self.clock)
        return self

    def verifier(self, keyset: dict[str, Any]) -> JwksVerifier:
        async def fetch() -> dict[str, Any]:
            return keyset

        return JwksVerifier(
            "unused", issuer="llmts-auth", audience="llmts", fetch_jwks=fetch, leeway_seconds=0
        )

    async def register(self, email: str = "Ada@Example.com", password: str = PASSWORD) -> Any:
        return await handlers.register(
            Register(email=email, password=password, name=" Ada "),
            users=self.users,
            hasher=self.hasher,
            clock=self.clock,
        )

    async def login(
        self, email: str = "ada@example.com", password: str = PASSWORD, ip: str = "10.0.0.1"
    ) -> Any:
        return await handlers.login(
            Login(email=email, password=password, client_ip=ip),
            users=self.users,
            hasher=self.hasher,
            throttle=self.throttle,
            throttle_policy=self.throttle_policy,
            tokens=self.tokens,
            clock=self.clock,
        )

    async def refresh(self, token: str) -> Any:
        return await handlers.refresh(Refresh(token), users=self.users, tokens=self.tokens, clock=self.clock)


@pytest.fixture
async def world() -> World:
    return await World().start()


# --- register -------------------------------------------------------------------------------------------------


async def test_register_normalises_hashes_and_records_the_event(world: World) -> None:
    user = await world.register()
    assert user.email == "ada@example.com"
    assert user.name == "Ada"
    assert user.password_hash is not None
    assert PASSWORD not in user.password_hash
    [event] = world.users.events
    assert isinstance(event, UserRegistered)
    assert (event.user_id, event.email, event.method) == (user.id, "ada@example.com", "password")


async def test_duplicate_email_in_any_case_is_a_conflict(world: World) -> None:
    await world.register()
    with pytest.raises(errors.EmailTaken):
        await world.register(email="  ADA@example.COM ")


async def test_weak_password_is_refused_with_reason(world: World) -> None:
    with pytest.raises(errors.WeakPassword) as err:
        await world.register(password="ada@example.com")
    assert err.value.details["reason"] == "matches_email"
    assert world.users.rows == {}


# --- login ----------------------------------------------------------------------------------------------------


async def test_login_issues_a_verifiable_access_token(world: World) -> None:
    user = await world.register()
    pair = await world.login(email=" ADA@example.com ")
    assert pair.token_type == "bearer"
    assert pair.expires_in == 900
    principal = await world.verifier(await world.signer.jwks()).verify(pair.access_token)
    assert principal.user_id == user.id
    assert principal.email == "ada@example.com"
    assert principal.claims["typ"] == "access"
    stored = world.refresh_tokens.rows[hash_refresh_token(pair.refresh_token)]
    assert stored.user_id == user.id
    assert pair.refresh_token not in str(world.refresh_tokens.rows)


async def test_wrong_password_and_unknown_email_look_the_same(world: World) -> None:
    await world.register()
    with pytest.raises(errors.InvalidCredentials) as wrong:
        await world.login(password="not the password")
    with pytest.raises(errors.InvalidCredentials) as unknown:
        await world.login(email="nobody@example.com")
    assert str(wrong.value) == str(unknown.value)
    assert world.hasher.verify_calls == 1
    assert world.hasher.dummy_calls == 1  # the unknown email still paid for a verify


async def test_failures_from_one_address_back_off_without_locking_out_the_owner(world: World) -> None:
    await world.register()
    for _ in range(4):  # the attacker at A: 3 free failures, the 4th makes A wait 1 s
        with pytest.raises(errors.InvalidCredentials):
            await world.login(password="wrong password!", ip="198.51.100.1")
    with pytest.raises(errors.LoginThrottled) as err:
        await world.login(ip="198.51.100.1")  # A is slowed, even with the right password
    assert 1 <= err.value.retry_after <= 900
    assert (await world.login(ip="203.0.113.9")).access_token  # the owner at B is not locked out
    world.clock.advance(seconds=err.value.retry_after)
    assert (await world.login(ip="198.51.100.1")).access_token


async def test_backoff_doubles_per_failure_from_the_same_address() -> None:
    world = await World(throttle_policy=ThrottlePolicy(max_failures_per_ip=50, backoff_free=3)).start()
    await world.register()
    for _ in range(3):  # free
        with pytest.raises(errors.InvalidCredentials):
            await world.login(password="wrong password!", ip="198.51.100.1")
    waits = []
    for _ in range(3):
        with pytest.raises(errors.InvalidCredentials):
            await world.login(password="wrong password!", ip="198.51.100.1")
        with pytest.raises(errors.LoginThrottled) as err:
            await world.login(ip="198.51.100.1")
        waits.append(err.value.retry_after)
        world.clock.advance(seconds=err.value.retry_after)
    assert waits == [1, 2, 4]


async def test_failures_per_ip_are_throttled_across_emails(world: World) -> None:
    for i in range(5):
        with pytest.raises(errors.InvalidCredentials):
            await world.login(email=f"user{i}@example.com", ip="192.0.2.7")
    with pytest.raises(errors.LoginThrottled):
        await world.login(email="fresh@example.com", ip="192.0.2.7")
    with pytest.raises(errors.InvalidCredentials):  # another IP is not affected
        await world.login(email="fresh@example.com", ip="192.0.2.8")


async def test_success_resets_the_email_counter(world: World) -> None:
    await world.register()
    for _ in range(2):
        with pytest.raises(errors.InvalidCredentials):
            await world.login(password="wrong password!")
    await world.login()
    for _ in range(2):
        with pytest.raises(errors.InvalidCredentials):
            await world.login(password="wrong password!")
    assert await world.login()


async def test_outdated_hash_is_upgraded_on_login(world: World) -> None:
    user = await world.register()
    world.hasher.outdated_prefix = "old$"
    import hashlib

    await world.users.set_password_hash(user.id, "old$" + hashlib.sha256(PASSWORD.encode()).hexdigest())
    await world.login()
    assert world.users.rows[user.id].password_hash == await world.hasher.hash(PASSWORD)


# --- refresh / logout -----------------------------------------------------------------------------------------


async def test_refresh_rotates_and_reuse_revokes_the_family(world: World) -> None:
    await world.register()
    first = await world.login()
    second = await world.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    third = await world.refresh(second.refresh_token)
    with pytest.raises(errors.RefreshTokenReused):
        await world.refresh(first.refresh_token)  # replay of a spent token
    # the whole family is gone, including the newest token the legitimate client holds
    with pytest.raises(errors.InvalidRefreshToken):
        await world.refresh(third.refresh_token)
    other_session = await world.login()  # another family is untouched
    assert await world.refresh(other_session.refresh_token)


async def test_expired_and_unknown_refresh_tokens(world: World) -> None:
    await world.register()
    pair = await world.login()
    with pytest.raises(errors.InvalidRefreshToken):
        await world.refresh("not-a-token")
    world.clock.advance(days=31)
    with pytest.raises(errors.InvalidRefreshToken):
        await world.refresh(pair.refresh_token)


async def test_refresh_of_a_deleted_user_fails(world: World) -> None:
    user = await world.register()
    pair = await world.login()
    await handlers.delete_user(user.id, users=world.users, refresh_tokens=world.refresh_tokens)
    with pytest.raises(errors.InvalidRefreshToken):
        await world.refresh(pair.refresh_token)
    with pytest.raises(errors.UserNotFound):
        await handlers.current_user(user.id, users=world.users)


async def test_logout_revokes_only_the_callers_family(world: World) -> None:
    user = await world.register()
    pair = await world.login()
    await handlers.logout(
        Logout(user_id="someone-else", refresh_token=pair.refresh_token), refresh_tokens=world.refresh_tokens
    )
    assert not world.refresh_tokens.rows[hash_refresh_token(pair.refresh_token)].revoked
    await handlers.logout(
        Logout(user_id=user.id, refresh_token=pair.refresh_token), refresh_tokens=world.refresh_tokens
    )
    with pytest.raises(errors.InvalidRefreshToken):
        await world.refresh(pair.refresh_token)
    await handlers.logout(
        Logout(user_id=user.id, refresh_token="unknown"), refresh_tokens=world.refresh_tokens
    )


# --- OAuth ----------------------------------------------------------------------------------------------------


def _profile(**kw: Any) -> ExternalProfile:
    base: dict[str, Any] = {
        "provider": "github",
        "subject": "4242",
        "email": "Ada@Example.com",
        "email_verified": True,
        "name": "Ada",
    }
    base.update(kw)
    return ExternalProfile(**base)


async def _oauth(world: World, provider: str = "github", **cmd: Any) -> Any:
    url, bound = await handlers.start_oauth(
        StartOAuth(provider=provider, redirect_uri="http://127.0.0.1:8000/cb"),
        providers=world.providers,
        states=world.states,
        clock=world.clock,
    )
    state = url.split("state=")[1].split("&")[0]
    assert bound == state
    args: dict[str, Any] = {"state": state, "code": "the-code", "browser_state": state, **cmd}
    return await handlers.complete_oauth(
        CompleteOAuth(provider=provider, redirect_uri="http://127.0.0.1:8000/cb", **args),
        providers=world.providers,
        states=world.states,
        users=world.users,
        tokens=world.tokens,
        clock=world.clock,
    )


async def test_unknown_and_unconfigured_providers(world: World) -> None:
    world.providers = {"google": None}
    with pytest.raises(errors.UnknownProvider):
        await _oauth(world, provider="myspace")
    with pytest.raises(errors.ProviderNotConfigured):
        await _oauth(world, provider="google")


async def test_oauth_creates_an_account_then_finds_it_by_identity(world: World) -> None:
    seen: list[dict[str, Any]] = []
    world.providers = {"github": FakeProvider("github", _profile(), seen)}
    pair = await _oauth(world)
    [user] = world.users.rows.values()
    assert user.email == "ada@example.com"
    assert user.identities == (Identity("github", "4242"),)
    assert user.password_hash is None
    assert [e.method for e in world.users.events] == ["github"]  # type: ignore[attr-defined]
    assert len(seen[0]["code_verifier"]) >= 43  # PKCE verifier from the stored state
    # the provider email changes later: the identity still finds the same account
    world.providers["github"].profile = _profile(email="new@example.com")
    await _oauth(world)
    assert len(world.users.rows) == 1
    assert pair.access_token


async def test_oauth_links_an_existing_password_account_on_verified_email(world: World) -> None:
    user = await world.register()
    world.providers = {"google": FakeProvider("google", _profile(provider="google", subject="g-1"))}
    await _oauth(world, provider="google")
    assert world.users.rows[user.id].identities == (Identity("google", "g-1"),)
    assert len(world.users.rows) == 1


async def test_oauth_refuses_unverified_email(world: World) -> None:
    await world.register()
    world.providers = {"github": FakeProvider("github", _profile(email_verified=False))}
    with pytest.raises(errors.EmailNotVerified):
        await _oauth(world)
    world.providers = {"github": FakeProvider("github", _profile(email=None))}
    with pytest.raises(errors.EmailNotVerified):
        await _oauth(world)
    [user] = world.users.rows.values()
    assert user.identities == ()  # nothing linked


async def test_oauth_state_rules(world: World) -> None:
    world.providers = {
        "github": FakeProvider("github", _profile()),
        "google": FakeProvider("google", _profile()),
    }
    with pytest.raises(errors.OAuthStateInvalid):
        await _oauth(world, state="forged-state")
    with pytest.raises(errors.OAuthStateInvalid):
        await _oauth(world, state=None)
    with pytest.raises(errors.OAuthMissingCode):
        await _oauth(world, code=None)
    with pytest.raises(errors.OAuthDenied):
        await _oauth(world, error="access_denied", code=None)
    # a state issued for google is not accepted on github's callback
    url, _ = await handlers.start_oauth(
        StartOAuth(provider="google", redirect_uri="x"),
        providers=world.providers,
        states=world.states,
        clock=world.clock,
    )
    state = url.split("state=")[1].split("&")[0]
    with pytest.raises(errors.OAuthStateInvalid):
        await handlers.complete_oauth(
            CompleteOAuth(provider="github", redirect_uri="x", state=state, code="c", browser_state=state),
            providers=world.providers,
            states=world.states,
            users=world.users,
            tokens=world.tokens,
            clock=world.clock,
        )
    # every presented state was consumed; only the two never presented (forged / missing) remain
    assert len(world.states.rows) == 2


async def test_oauth_state_must_come_back_with_the_browser_cookie(world: World) -> None:
    """Login CSRF: an attacker's own state and code, replayed in the victim's browser (no cookie, or the victim's
    cookie of another start), is refused."""
    world.providers = {"github": FakeProvider("github", _profile())}
    with pytest.raises(errors.OAuthStateInvalid):
        await _oauth(world, browser_state=None)
    _, victims = await handlers.start_oauth(
        StartOAuth(provider="github", redirect_uri="x"),
        providers=world.providers,
        states=world.states,
        clock=world.clock,
    )
    with pytest.raises(errors.OAuthStateInvalid):
        await _oauth(world, browser_state=victims)
    assert world.users.rows == {}
    assert (await _oauth(world)).access_token


async def test_oauth_state_expires(world: World) -> None:
    world.providers = {"github": FakeProvider("github", _profile())}
    url, _ = await handlers.start_oauth(
        StartOAuth(provider="github", redirect_uri="x"),
        providers=world.providers,
        states=world.states,
        clock=world.clock,
    )
    state = url.split("state=")[1].split("&")[0]
    world.clock.advance(minutes=11)
    with pytest.raises(errors.OAuthStateInvalid):
        await handlers.complete_oauth(
            CompleteOAuth(provider="github", redirect_uri="x", state=state, code="c", browser_state=state),
            providers=world.providers,
            states=world.states,
            users=world.users,
            tokens=world.tokens,
            clock=world.clock,
        )


# --- signing keys ---------------------------------------------------------------------------------------------


async def test_ensure_signing_key_is_idempotent(world: World) -> None:
    first = await handlers.ensure_signing_key(
        keys=world.keys, generate=generate_ed25519_key, clock=world.clock
    )
    again = await handlers.ensure_signing_key(
        keys=world.keys, generate=generate_ed25519_key, clock=world.clock
    )
    assert first.kid == again.kid
    assert len(world.keys.rows) == 1
    jwks = await world.signer.jwks()
    assert [k["kid"] for k in jwks["keys"]] == [first.kid]
    assert all("d" not in k for k in jwks["keys"])  # public parts only


async def test_rotation_without_downtime() -> None:
    # the clock starts in the past so tokens signed after the activation delay are not "issued in the future"
    world = await World(
        clock=FakeClock(datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2))
    ).start()
    user = await world.register()
    before = await world.login()
    old_kid = jwt.decode(
        before.access_token, KeySet.import_key_set(await world.signer.jwks()), algorithms=ALG
    ).header["kid"]
    gateway = world.verifier(await world.signer.jwks())  # a verifier that cached the JWKS before the rotation
    new = await handlers.rotate_signing_key(
        keys=world.keys,
        generate=generate_ed25519_key,
        clock=world.clock,
        policy=world.policy,
        activation_delay=timedelta(seconds=30),
    )
    jwks = await world.signer.jwks()
    assert {k["kid"] for k in jwks["keys"]} == {old_kid, new.kid}  # both published
    during = await world.login()  # inside the activation delay the old key still signs
    assert (
        jwt.decode(during.access_token, KeySet.import_key_set(jwks), algorithms=ALG).header["kid"] == old_kid
    )
    world.clock.advance(seconds=31)
    after = await world.login()
    assert (
        jwt.decode(after.access_token, KeySet.import_key_set(jwks), algorithms=ALG).header["kid"] == new.kid
    )
    # every token verifies with the new JWKS; the stale verifier still accepts the old tokens
    fresh = world.verifier(jwks)
    for pair in (before, during, after):
        assert (await fresh.verify(pair.access_token)).user_id == user.id
    assert (await gateway.verify(before.access_token)).user_id == user.id
    # once every old-key token has expired, the old key leaves the JWKS
    world.clock.advance(minutes=17)
    assert [k["kid"] for k in (await world.signer.jwks())["keys"]] == [new.kid]


async def test_verifier_rejects_expired_tokens() -> None:
    world = await World(clock=FakeClock(datetime.now(UTC) - timedelta(hours=1))).start()
    await world.register()
    pair = await world.login()
    with pytest.raises(Unauthorized):
        await world.verifier(await world.signer.jwks()).verify(pair.access_token)
