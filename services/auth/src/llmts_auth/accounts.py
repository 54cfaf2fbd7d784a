"""Use cases on accounts after sign-up: password change, self-erasure, and the admin's user management.

Plain async functions like ``handlers``; no HTTP, Kafka or Mongo here. Role changes take effect at the user's next
token (a refresh re-reads the account); a disabled or deleted account is refused at once (login and refresh here,
access tokens at the gateway through ``UserDisabled`` / ``UserDeleted``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from llmts_auth.domain import errors
from llmts_auth.domain.commands import ChangePassword, DeleteAccount
from llmts_auth.domain.passwords import check_password
from llmts_auth.domain.ports import (
    Clock,
    LoginThrottle,
    PasswordHasher,
    RefreshTokenRepository,
    UserRepository,
)
from llmts_auth.domain.throttle import ThrottlePolicy, login_keys, retry_after_seconds
from llmts_auth.domain.users import Role, User
from llmts_auth.handlers import TokenPair, Tokens, issue_pair
from llmts_common.contracts import UserDeleted, UserDisabled, UserEnabled

log = logging.getLogger("llmts.auth")

# Without the password (an OAuth-only account, or the caller chose not to type it), a sensitive operation needs an
# access token issued this recently: a fresh login proves the person is at the keyboard.
RECENT_LOGIN = timedelta(minutes=5)
MAX_PAGE = 100


@dataclass(frozen=True)
class Guard:
    """What re-checking a password needs: the hasher and the login throttle (a stolen access token must not be a
    free password oracle)."""

    hasher: PasswordHasher
    throttle: LoginThrottle
    policy: ThrottlePolicy


async def _reauthenticate(
    user: User,
    password: str | None,
    *,
    issued_at_age: timedelta,
    guard: Guard,
    clock: Clock,
    client_ip: str | None,
) -> None:
    if password is None:
        if issued_at_age <= RECENT_LOGIN:
            return
        raise errors.ReauthenticationRequired(
            "give your password, or log in again (a token issued in the last 5 minutes) and retry",
            details={"recent_login_seconds": int(RECENT_LOGIN.total_seconds())},
        )
    keys = login_keys(guard.policy, email=user.email, client_ip=client_ip)
    now = clock()
    until = await guard.throttle.blocked_until(keys, now=now)
    if until is not None:
        raise errors.LoginThrottled(retry_after_seconds(now, until))
    ok = False
    if user.password_hash:
        ok, _ = await guard.hasher.verify(password, user.password_hash)
    else:
        await guard.hasher.dummy_verify(password)
    if not ok:
        await guard.throttle.record_failure(keys, now=now)
        raise errors.ReauthenticationRequired("the password is wrong", details={"field": "password"})


async def _active_user(user_id: str, users: UserRepository) -> User:
    user = await users.get(user_id)
    if user is None:
        raise errors.UserNotFound("the user of this token no longer exists")
    if user.disabled:
        raise errors.AccountDisabled("this account is disabled")
    return user


async def change_password(
    cmd: ChangePassword, *, users: UserRepository, guard: Guard, tokens: Tokens, clock: Clock
) -> TokenPair:
    """Check the current password (or a recent login for an account without one), store the new one, revoke every
    refresh token of the account (all other sessions end) and answer a fresh pair for this one."""
    user = await _active_user(cmd.user_id, users)
    if user.password_hash and cmd.current_password is None:
        raise errors.ReauthenticationRequired(
            "give your current password", details={"field": "current_password"}
        )
    await _reauthenticate(
        user,
        cmd.current_password,
        issued_at_age=clock() - cmd.token_issued_at,
        guard=guard,
        clock=clock,
        client_ip=cmd.client_ip,
    )
    check_password(cmd.new_password, email=user.email)
    await users.set_password_hash(user.id, await guard.hasher.hash(cmd.new_password))
    revoked = await tokens.refresh_tokens.revoke_user(user.id)
    log.info("password changed", extra={"user_id": user.id, "revoked_refresh_tokens": revoked})
    return await issue_pair(user, tokens=tokens, clock=clock)


async def delete_account(
    cmd: DeleteAccount,
    *,
    users: UserRepository,
    refresh_tokens: RefreshTokenRepository,
    guard: Guard,
    clock: Clock,
) -> None:
    """The user erases their own account; every service forgets them (``UserDeleted``). An account with a password
    must give it (a stolen fresh token is not enough); one without (OAuth only) needs a login in the last 5 min."""
    user = await _active_user(cmd.user_id, users)
    if user.password_hash and cmd.password is None:
        raise errors.ReauthenticationRequired("give your password", details={"field": "password"})
    await _reauthenticate(
        user,
        cmd.password,
        issued_at_age=clock() - cmd.token_issued_at,
        guard=guard,
        clock=clock,
        client_ip=cmd.client_ip,
    )
    await erase_user(user.id, users=users, refresh_tokens=refresh_tokens, clock=clock, by="self")


async def erase_user(
    user_id: str, *, users: UserRepository, refresh_tokens: RefreshTokenRepository, clock: Clock, by: str
) -> bool:
    await refresh_tokens.revoke_user(user_id)
    now = clock()
    erased = await users.erase(user_id, events=[UserDeleted(user_id=user_id, deleted_at=now, by=by)])
    if erased:
        log.warning("account erased", extra={"user_id": user_id, "by": by})
    return erased


# --- admin ----------------------------------------------------------------------------------------------------


async def require_admin(actor_id: str, *, users: UserRepository) -> User:
    """The acting user must be an admin *now* (a demoted admin's unexpired token carries an old role claim)."""
    actor = await users.get(actor_id)
    if actor is None or actor.disabled or actor.role != "admin":
        raise errors.NotAdmin("this operation needs the admin role", details={"required_role": "admin"})
    return actor


async def list_users(
    actor_id: str, *, users: UserRepository, offset: int, limit: int
) -> tuple[list[User], int]:
    await require_admin(actor_id, users=users)
    return await users.page(offset=max(0, offset), limit=max(1, min(limit, MAX_PAGE)))


async def get_user(actor_id: str, user_id: str, *, users: UserRepository) -> User:
    await require_admin(actor_id, users=users)
    return await _target(user_id, users)


async def _target(user_id: str, users: UserRepository) -> User:
    user = await users.get(user_id)
    if user is None:
        raise errors.AccountNotFound("no such user", details={"user_id": user_id})
    return user


def _not_self(actor: User, user_id: str, what: str) -> None:
    if actor.id == user_id:
        raise errors.CannotChangeSelf(
            f"an admin cannot {what} their own account here (ask another admin)", details={"user_id": user_id}
        )


async def set_role(actor_id: str, user_id: str, role: Role, *, users: UserRepository) -> User:
    """Grant or revoke the admin role; it reaches the user's token at their next refresh."""
    actor = await require_admin(actor_id, users=users)
    if role != "admin":
        _not_self(actor, user_id, "demote")
    user = await _target(user_id, users)
    if user.role != role:
        await users.set_role(user_id, role)
        log.warning("role changed", extra={"user_id": user_id, "role": role, "by": actor.id})
    return await _target(user_id, users)


async def set_disabled(
    actor_id: str,
    user_id: str,
    disabled: bool,
    *,
    users: UserRepository,
    refresh_tokens: RefreshTokenRepository,
    clock: Clock,
) -> User:
    """Disable (refresh tokens revoked, ``UserDisabled`` makes the gateway refuse the access tokens) or enable."""
    actor = await require_admin(actor_id, users=users)
    if disabled:
        _not_self(actor, user_id, "disable")
    user = await _target(user_id, users)
    if user.disabled != disabled:
        now = clock()
        event = (
            UserDisabled(user_id=user_id, disabled_at=now, by=actor.id)
            if disabled
            else UserEnabled(user_id=user_id, enabled_at=now, by=actor.id)
        )
        await users.set_disabled(user_id, disabled, events=[event])
        log.warning(
            "account %s", "disabled" if disabled else "enabled", extra={"user_id": user_id, "by": actor.id}
        )
    if disabled:
        await refresh_tokens.revoke_user(user_id)
    return await _target(user_id, users)


async def admin_delete(
    actor_id: str,
    user_id: str,
    *,
    users: UserRepository,
    refresh_tokens: RefreshTokenRepository,
    clock: Clock,
) -> None:
    actor = await require_admin(actor_id, users=users)
    _not_self(actor, user_id, "delete")
    await _target(user_id, users)
    await erase_user(user_id, users=users, refresh_tokens=refresh_tokens, clock=clock, by=actor.id)
