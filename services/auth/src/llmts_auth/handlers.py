"""Use cases of the auth service: plain async functions, the command first, then keyword dependencies.

No handler knows HTTP, Kafka or Mongo; they talk to the ports in ``domain/ports.py``.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from llmts_auth.domain import errors
from llmts_auth.domain.commands import CompleteOAuth, Login, Logout, Refresh, Register, StartOAuth
from llmts_auth.domain.passwords import check_password
from llmts_auth.domain.ports import (
    Clock,
    LoginThrottle,
    OAuthProvider,
    OAuthState,
    OAuthStateRepository,
    PasswordHasher,
    RefreshTokenRepository,
    SigningKeyStore,
    TokenSigner,
    UserRepository,
)
from llmts_auth.domain.throttle import ThrottlePolicy, login_keys, register_key, retry_after_seconds
from llmts_auth.domain.tokens import (
    RefreshTokenRecord,
    RefreshVerdict,
    SigningKey,
    TokenPolicy,
    access_claims,
    active_key,
    child_record,
    hash_refresh_token,
    new_refresh_token,
    retirement_time,
)
from llmts_auth.domain.users import PROVIDERS, ExternalProfile, Identity, User, normalize_email
from llmts_common.contracts import UserRegistered

log = logging.getLogger("llmts.auth")

OAUTH_STATE_TTL = timedelta(minutes=10)


def new_user_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - OAuth token type, not a secret

    def __repr__(self) -> str:  # never print a token
        return f"TokenPair(expires_in={self.expires_in})"


@dataclass(frozen=True)
class Tokens:
    """Everything needed to issue a token pair."""

    signer: TokenSigner
    refresh_tokens: RefreshTokenRepository
    policy: TokenPolicy


async def issue_pair(
    user: User, *, tokens: Tokens, clock: Clock, parent: RefreshTokenRecord | None = None
) -> TokenPair:
    now = clock()
    access = await tokens.signer.sign(
        access_claims(user, policy=tokens.policy, now=now, jti=uuid.uuid4().hex)
    )
    refresh = new_refresh_token()
    await tokens.refresh_tokens.add(
        child_record(
            parent,
            token_hash=hash_refresh_token(refresh),
            user_id=user.id,
            family_id=uuid.uuid4().hex,
            now=now,
            policy=tokens.policy,
        )
    )
    return TokenPair(
        access_token=access,
        refresh_token=refresh,
        expires_in=int(tokens.policy.access_ttl.total_seconds()),
    )


# --- email / password -----------------------------------------------------------------------------------------


async def register(
    cmd: Register,
    *,
    users: UserRepository,
    hasher: PasswordHasher,
    clock: Clock,
    throttle: LoginThrottle | None = None,
    throttle_policy: ThrottlePolicy | None = None,
    admin_emails: frozenset[str] = frozenset(),
    new_id: Callable[[], str] = new_user_id,
) -> User:
    """Create a password account. With a throttle, each client address has a budget of attempts per window,
    counted before the (costly) hash so a flood is refused cheaply."""
    if throttle is not None and throttle_policy is not None:
        key = register_key(throttle_policy, client_ip=cmd.client_ip)
        now = clock()
        until = await throttle.blocked_until([key], now=now)
        if until is not None:
            raise errors.LoginThrottled(retry_after_seconds(now, until), what="registration attempts")
        await throttle.record_failure([key], now=now)
    email = normalize_email(cmd.email)
    check_password(cmd.password, email=email)
    if await users.by_email(email) is not None:  # fast path; the unique index is the real guard
        raise errors.EmailTaken("an account with this email already exists")
    name = cmd.name.strip() if cmd.name and cmd.name.strip() else None
    user = User(
        id=new_id(),
        email=email,
        name=name,
        created_at=clock(),
        password_hash=await hasher.hash(cmd.password),
        role="admin" if email in admin_emails else "user",
    )
    event = UserRegistered(
        user_id=user.id, email=email, name=name, method="password", registered_at=user.created_at
    )
    await users.add(user, events=[event])
    log.info("user registered", extra={"user_id": user.id, "method": "password"})
    return user


def _login_email(raw: str) -> str:
    try:
        return normalize_email(raw)
    except errors.InvalidEmail:
        return raw.strip().lower()  # cannot exist; still goes through the same (slow) path


async def login(
    cmd: Login,
    *,
    users: UserRepository,
    hasher: PasswordHasher,
    throttle: LoginThrottle,
    throttle_policy: ThrottlePolicy,
    tokens: Tokens,
    clock: Clock,
    admin_emails: frozenset[str] = frozenset(),
) -> TokenPair:
    """Throttled per account+address (exponential backoff) and per address; a correct password from another
    address is never refused because of someone else's failures. A disabled account is refused after the
    password matched (a wrong password answers as usual, so the state is not revealed to a guesser)."""
    email = _login_email(cmd.email)
    keys = login_keys(throttle_policy, email=email, client_ip=cmd.client_ip)
    now = clock()
    blocked_until = await throttle.blocked_until(keys, now=now)
    if blocked_until is not None:
        raise errors.LoginThrottled(retry_after_seconds(now, blocked_until))
    user = await users.by_email(email)
    ok, new_hash = False, None
    if user is not None and user.password_hash:
        ok, new_hash = await hasher.verify(cmd.password, user.password_hash)
    else:
        await hasher.dummy_verify(cmd.password)  # comparable time for an unknown email
    if not ok or user is None:
        await throttle.record_failure(keys, now=now)
        log.info("login failed", extra={"user_id": user.id if user else None})
        raise errors.InvalidCredentials()
    await throttle.clear(keys[0], now=now)
    if new_hash is not None:
        await users.set_password_hash(user.id, new_hash)
    user = await _checked_login(user, users=users, admin_emails=admin_emails)
    log.info("login succeeded", extra={"user_id": user.id})
    return await issue_pair(user, tokens=tokens, clock=clock)


async def _checked_login(user: User, *, users: UserRepository, admin_emails: frozenset[str]) -> User:
    """Refuse a disabled account; give the admin role to an email listed in ``ADMIN_EMAILS``."""
    if user.disabled:
        log.info("login of a disabled account refused", extra={"user_id": user.id})
        raise errors.AccountDisabled("this account is disabled")
    if user.email in admin_emails and user.role != "admin":
        await users.set_role(user.id, "admin")
        log.warning("admin role granted from ADMIN_EMAILS", extra={"user_id": user.id})
        return replace(user, role="admin")
    return user


async def refresh(cmd: Refresh, *, users: UserRepository, tokens: Tokens, clock: Clock) -> TokenPair:
    repo = tokens.refresh_tokens
    record, verdict = await repo.consume(hash_refresh_token(cmd.refresh_token), now=clock())
    if verdict is RefreshVerdict.REUSED and record is not None:
        revoked = await repo.revoke_family(record.family_id)
        log.warning(
            "refresh token reuse detected; family revoked",
            extra={"user_id": record.user_id, "family_id": record.family_id, "revoked": revoked},
        )
        raise errors.RefreshTokenReused("refresh token was already used; please log in again")
    if verdict is not RefreshVerdict.VALID or record is None:
        raise errors.InvalidRefreshToken(f"refresh token is {verdict.value}")
    user = await users.get(record.user_id)
    if user is None or user.disabled:
        await repo.revoke_family(record.family_id)
        if user is not None:
            raise errors.AccountDisabled("this account is disabled")
        raise errors.InvalidRefreshToken("refresh token is revoked")
    pair = await issue_pair(user, tokens=tokens, clock=clock, parent=record)
    # A reuse detected between our spend and the insert of the child would miss the child: check again.
    current = await repo.get(record.token_hash)
    if current is None or current.revoked:
        await repo.revoke_family(record.family_id)
        raise errors.RefreshTokenReused("refresh token was already used; please log in again")
    return pair


async def logout(cmd: Logout, *, refresh_tokens: RefreshTokenRepository) -> None:
    """Revoke the family of the presented refresh token (only the caller's own; unknown tokens are a no-op)."""
    record = await refresh_tokens.get(hash_refresh_token(cmd.refresh_token))
    if record is not None and record.user_id == cmd.user_id:
        await refresh_tokens.revoke_family(record.family_id)
        log.info("logged out", extra={"user_id": cmd.user_id, "family_id": record.family_id})


async def current_user(user_id: str, *, users: UserRepository) -> User:
    user = await users.get(user_id)
    if user is None:
        raise errors.UserNotFound("the user of this token no longer exists")
    if user.disabled:
        raise errors.AccountDisabled("this account is disabled")
    return user


async def delete_user(user_id: str, *, users: UserRepository, refresh_tokens: RefreshTokenRepository) -> bool:
    """Remove an account: its refresh tokens stop working now, its access tokens at ``/auth/me`` now."""
    await refresh_tokens.revoke_user(user_id)
    return await users.delete(user_id)


# --- OAuth ----------------------------------------------------------------------------------------------------


def _provider(name: str, providers: dict[str, OAuthProvider | None]) -> OAuthProvider:
    if name not in PROVIDERS:
        raise errors.UnknownProvider(
            f"unknown OAuth provider {name!r}", details={"providers": list(PROVIDERS)}
        )
    impl = providers.get(name)
    if impl is None:
        raise errors.ProviderNotConfigured(f"{name} login is not configured on this server")
    return impl


async def start_oauth(
    cmd: StartOAuth,
    *,
    providers: dict[str, OAuthProvider | None],
    states: OAuthStateRepository,
    clock: Clock,
    state_ttl: timedelta = OAUTH_STATE_TTL,
) -> tuple[str, str]:
    """Remember a fresh state + PKCE verifier + nonce; answer the provider's authorization URL and the state (the
    caller binds it to the browser with a cookie, checked at the callback)."""
    impl = _provider(cmd.provider, providers)
    state = OAuthState(
        state=secrets.token_urlsafe(32),
        provider=cmd.provider,
        code_verifier=secrets.token_urlsafe(48),
        nonce=secrets.token_urlsafe(16),
        redirect_uri=cmd.redirect_uri,
        expires_at=clock() + state_ttl,
    )
    await states.add(state)
    url = impl.authorization_url(
        state=state.state,
        code_verifier=state.code_verifier,
        nonce=state.nonce,
        redirect_uri=state.redirect_uri,
    )
    return url, state.state


async def complete_oauth(
    cmd: CompleteOAuth,
    *,
    providers: dict[str, OAuthProvider | None],
    states: OAuthStateRepository,
    users: UserRepository,
    tokens: Tokens,
    clock: Clock,
    new_id: Callable[[], str] = new_user_id,
    admin_emails: frozenset[str] = frozenset(),
) -> TokenPair:
    impl = _provider(cmd.provider, providers)
    stored = await states.consume(cmd.state) if cmd.state else None  # single use, whatever happens next
    if cmd.error:
        raise errors.OAuthDenied(
            f"{cmd.provider} refused the login: {cmd.error}",
            details={"error": cmd.error, "error_description": cmd.error_description},
        )
    if stored is None or stored.provider != cmd.provider or stored.expires_at <= clock():
        raise errors.OAuthStateInvalid("unknown, expired or already used OAuth state")
    if cmd.browser_state is None or not secrets.compare_digest(cmd.browser_state, stored.state):
        # login CSRF: the state must come back with the cookie set on this browser at the start
        raise errors.OAuthStateInvalid("the OAuth state does not belong to this browser")
    if not cmd.code:
        raise errors.OAuthMissingCode("the provider did not return an authorization code")
    profile = await impl.fetch_profile(
        code=cmd.code,
        code_verifier=stored.code_verifier,
        nonce=stored.nonce,
        redirect_uri=stored.redirect_uri,
    )
    user = await _user_for_profile(profile, users=users, clock=clock, new_id=new_id)
    user = await _checked_login(user, users=users, admin_emails=admin_emails)
    return await issue_pair(user, tokens=tokens, clock=clock)


async def _user_for_profile(
    profile: ExternalProfile, *, users: UserRepository, clock: Clock, new_id: Callable[[], str]
) -> User:
    """Find the linked account, or link/create one — only on an email the provider says is verified."""
    identity = Identity(profile.provider, profile.subject)
    user = await users.by_identity(identity)
    if user is not None:
        return user
    if not profile.email or not profile.email_verified:
        raise errors.EmailNotVerified(
            f"your {profile.provider} account has no verified email address",
            details={"provider": profile.provider},
        )
    email = normalize_email(profile.email)
    for _ in range(2):  # a concurrent registration of the same email makes the insert fail once
        user = await users.by_email(email)
        if user is not None:
            await users.link_identity(user.id, identity)
            log.info("oauth identity linked", extra={"user_id": user.id, "provider": profile.provider})
            return user.with_identity(identity)
        user = User(id=new_id(), email=email, name=profile.name, created_at=clock(), identities=(identity,))
        event = UserRegistered(
            user_id=user.id,
            email=email,
            name=user.name,
            method=profile.provider,
            registered_at=user.created_at,
        )
        try:
            await users.add(user, events=[event])
        except errors.EmailTaken:
            continue
        log.info("user registered", extra={"user_id": user.id, "method": profile.provider})
        return user
    raise errors.EmailTaken("an account with this email already exists")


# --- signing keys ---------------------------------------------------------------------------------------------

KeyFactory = Callable[[datetime], SigningKey]


async def ensure_signing_key(*, keys: SigningKeyStore, generate: KeyFactory, clock: Clock) -> SigningKey:
    """At start-up: make sure one key can sign (the first replica to start creates it)."""
    now = clock()
    current = active_key(await keys.all(), now=now)
    if current is not None:
        return current
    key = generate(now)
    await keys.add(key)
    log.info("signing key created", extra={"kid": key.kid})
    return key


async def rotate_signing_key(
    *,
    keys: SigningKeyStore,
    generate: KeyFactory,
    clock: Clock,
    policy: TokenPolicy,
    margin: timedelta = timedelta(minutes=1),
    activation_delay: timedelta = timedelta(0),
) -> SigningKey:
    """Publish a new key and let it sign after ``activation_delay``; previous keys stay in the JWKS until every
    token they signed has expired. With a delay longer than the verifiers' JWKS refresh interval, no verifier
    ever meets the new ``kid`` before it can fetch it: rotation without a single refused token."""
    now = clock()
    new_key = replace(generate(now), activated_at=now + activation_delay)
    await keys.add(new_key)
    until = retirement_time(new_key, access_ttl=policy.access_ttl, margin=margin)
    for key in await keys.all():
        if key.kid != new_key.kid and key.publish_until is None:
            await keys.retire(key.kid, publish_until=until)
    log.info("signing key rotated", extra={"kid": new_key.kid})
    return new_key


def public_jwks(all_keys: list[SigningKey], *, now: datetime) -> dict[str, Any]:
    return {"keys": [dict(k.public_jwk) for k in all_keys if k.published_at(now)]}
