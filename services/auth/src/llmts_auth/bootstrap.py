"""Composition root of the auth service: builds real adapters unless fakes are passed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI

from llmts_auth import handlers
from llmts_auth.adapters.jose import JoseTokenSigner, generate_ed25519_key
from llmts_auth.adapters.key_encryption import KeyCipher
from llmts_auth.adapters.mongo import (
    INDEXES,
    USERS,
    MongoLoginThrottle,
    MongoOAuthStates,
    MongoRefreshTokens,
    MongoSigningKeys,
    MongoUsers,
)
from llmts_auth.adapters.oauth import GitHubProvider, GoogleProvider
from llmts_auth.adapters.passwords import Argon2PasswordHasher, HashGate, hash_concurrency
from llmts_auth.domain.ports import Clock, OAuthProvider, PasswordHasher
from llmts_auth.domain.throttle import InFlightPerAddress, ThrottlePolicy
from llmts_auth.domain.tokens import TokenPolicy
from llmts_auth.entrypoints import accounts, http
from llmts_auth.entrypoints.http import AuthContext
from llmts_auth.handlers import Tokens
from llmts_auth.settings import AuthSettings
from llmts_common.auth import JwksVerifier
from llmts_common.outbox import EmbeddedOutbox, run_relay
from llmts_common.runtime import ServiceRuntime
from llmts_common.web import create_app as create_http_app

log = logging.getLogger("llmts.auth")

# An erased account's tombstone (no personal data, only its pending UserDeleted) is purged once published.
ERASED_TOMBSTONE_RETENTION = timedelta(hours=1)


def utc_now() -> datetime:
    """Now, at the millisecond precision BSON dates keep (what we answer equals what we read back later)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def build_providers(settings: AuthSettings) -> dict[str, OAuthProvider | None]:
    """Google and GitHub; a provider without client id + secret is known but unconfigured (503)."""
    google: GoogleProvider | None = None
    github: GitHubProvider | None = None
    if settings.google_configured:
        assert settings.google_client_id
        assert settings.google_client_secret
        google = GoogleProvider(
            client_id=settings.google_client_id,
            client_secret=settings.google_client_secret.get_secret_value(),
            authorize_url=settings.google_authorize_url,
            token_url=settings.google_token_url,
            jwks_url=settings.google_jwks_url,
            issuers=settings.google_issuers,
            timeout=settings.oauth_http_timeout_seconds,
        )
    if settings.github_configured:
        assert settings.github_client_id
        assert settings.github_client_secret
        github = GitHubProvider(
            client_id=settings.github_client_id,
            client_secret=settings.github_client_secret.get_secret_value(),
            authorize_url=settings.github_authorize_url,
            token_url=settings.github_token_url,
            api_url=settings.github_api_url,
            timeout=settings.oauth_http_timeout_seconds,
        )
    return {"google": google, "github": github}


def token_policy(settings: AuthSettings) -> TokenPolicy:
    return TokenPolicy(
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
        refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
    )


def throttle_policy_of(settings: AuthSettings) -> ThrottlePolicy:
    return ThrottlePolicy(
        max_failures_per_account_ip=settings.login_max_failures_per_account_ip,
        max_failures_per_ip=settings.login_max_failures_per_ip,
        max_registrations_per_ip=settings.register_max_per_ip,
        backoff_free=settings.login_backoff_free_failures,
        backoff_base=timedelta(seconds=settings.login_backoff_base_seconds),
        backoff_cap=timedelta(seconds=settings.login_backoff_cap_seconds),
        window=timedelta(seconds=settings.login_failure_window_seconds),
    )


def argon2_hasher(settings: AuthSettings) -> Argon2PasswordHasher:
    """argon2id behind a gate: as many hashes at once as the memory budget holds, a bounded queue, then 429."""
    gate = HashGate(
        concurrency=hash_concurrency(
            settings.password_hash_memory_budget_mib, settings.argon2_memory_cost_kib
        ),
        max_waiting=settings.password_hash_max_waiting,
    )
    return Argon2PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost_kib=settings.argon2_memory_cost_kib,
        parallelism=settings.argon2_parallelism,
        gate=gate,
    )


def key_cipher(settings: AuthSettings) -> KeyCipher | None:
    """What encrypts the signing keys at rest (None: plain text, development only)."""
    key = settings.signing_keys_encryption_key
    if key is None:
        return None
    return KeyCipher(key.get_secret_value(), settings.signing_keys_old_keys)


async def secure_signing_keys(keys: MongoSigningKeys) -> None:
    """Before the first key is used: refuse to start if the stored keys cannot be decrypted (raises
    ``SigningKeysLocked`` with the reason), encrypt plain-text keys, re-encrypt keys under an old key."""
    done = await keys.secure_at_rest()
    if done["encrypted"] or done["reencrypted"]:
        log.info("signing keys secured at rest", extra=done)
    if done["plaintext"]:
        log.warning(
            "%d signing key(s) stored in plain text: set SIGNING_KEYS_ENCRYPTION_KEY to encrypt them",
            done["plaintext"],
        )


def _add_background(
    runtime: ServiceRuntime,
    outbox: EmbeddedOutbox,
    ctx: AuthContext,
    users: MongoUsers,
    housekeeping_interval: float,
) -> None:
    """The outbox relay, and the purge of expired refresh tokens, OAuth states and throttle entries."""

    async def relay(stop: asyncio.Event) -> None:
        await run_relay([outbox], interval=1.0, stop=stop)

    async def housekeeping(stop: asyncio.Event) -> None:
        while not stop.is_set():
            now = ctx.clock()
            try:
                await ctx.refresh_tokens.purge_expired(before=now)
                await ctx.states.purge_expired(before=now)
                await ctx.throttle.purge_expired(before=now)
                await users.purge_erased(before=now - ERASED_TOMBSTONE_RETENTION)
            except Exception as exc:  # Mongo away: try again next tick
                log.warning("auth housekeeping failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=housekeeping_interval)

    runtime.add_background("outbox-relay", relay)
    runtime.add_background("housekeeping", housekeeping)


def bootstrap(
    settings: AuthSettings | None = None,
    *,
    hasher: PasswordHasher | None = None,
    providers: dict[str, OAuthProvider | None] | None = None,
    clock: Clock | None = None,
) -> tuple[FastAPI, ServiceRuntime]:
    settings = settings or AuthSettings()
    clock = clock or utc_now
    runtime = ServiceRuntime(settings, indexes=INDEXES)
    assert runtime.publisher is not None
    db = runtime.db
    outbox = EmbeddedOutbox([db[USERS]], runtime.publisher)
    users = MongoUsers(db, outbox)
    keys = MongoSigningKeys(db, key_cipher(settings))
    policy = token_policy(settings)
    signer = JoseTokenSigner(keys, clock=clock, cache_seconds=settings.signing_key_cache_seconds)
    throttle_policy = throttle_policy_of(settings)
    oauth_providers = providers if providers is not None else build_providers(settings)
    refresh_tokens = MongoRefreshTokens(db)
    ctx = AuthContext(
        settings=settings,
        users=users,
        refresh_tokens=refresh_tokens,
        states=MongoOAuthStates(db),
        throttle=MongoLoginThrottle(db, throttle_policy),
        throttle_policy=throttle_policy,
        hasher=hasher or argon2_hasher(settings),
        tokens=Tokens(signer=signer, refresh_tokens=refresh_tokens, policy=policy),
        verifier=JwksVerifier(
            settings.jwks_url,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            fetch_jwks=signer.jwks,
            min_refresh_seconds=1.0,  # a local Mongo read, not an HTTP call
        ),
        jwks=signer.jwks,
        providers=oauth_providers,
        clock=clock,
        in_flight=InFlightPerAddress(settings.password_checks_per_address),
    )

    _add_background(runtime, outbox, ctx, users, settings.housekeeping_interval_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime.lifespan(app):
            await secure_signing_keys(keys)
            await handlers.ensure_signing_key(keys=keys, generate=generate_ed25519_key, clock=clock)
            try:
                yield
            finally:
                await users.drain()
                for provider in oauth_providers.values():
                    close: Any = getattr(provider, "aclose", None)
                    if close is not None:
                        await close()

    app = create_http_app(
        service=settings.service_name,
        title="llmts auth",
        description="Accounts, login, OAuth and tokens. Reached through the gateway; publishes its JWKS.",
        lifespan=lifespan,
        checks=runtime.checks(),
        max_body_bytes=settings.max_body_bytes,
        max_json_depth=settings.max_json_depth,
    )
    http.install_error_mapping(app)
    app.include_router(http.router)
    app.include_router(accounts.router)
    app.state.runtime = runtime
    app.state.auth = ctx
    app.state.signing_keys = keys
    app.state.signer = signer
    return app, runtime


def create_app() -> FastAPI:
    """Factory for ``uvicorn --factory``."""
    return bootstrap()[0]
