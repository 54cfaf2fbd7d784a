"""Accounts after sign-up, against in-memory fakes: registration throttle, disabled accounts, the first admin from
ADMIN_EMAILS, password change, self-erasure, the admin's user management, and the memory-sized hash gate."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta

import pytest
from services.auth.tests.unit.test_handlers import PASSWORD, World

from llmts_auth import accounts, handlers
from llmts_auth.accounts import Guard
from llmts_auth.adapters.passwords import HashGate, hash_concurrency
from llmts_auth.domain import errors
from llmts_auth.domain.commands import ChangePassword, DeleteAccount, Register
from llmts_auth.domain.throttle import InFlightPerAddress, ThrottlePolicy
from llmts_auth.domain.users import User
from llmts_common.contracts import UserDeleted, UserDisabled, UserEnabled

pytestmark = pytest.mark.unit

NEW_PASSWORD = "an entirely new passphrase"


@pytest.fixture
async def world() -> World:
    return await World(throttle_policy=ThrottlePolicy(max_registrations_per_ip=2)).start()


def guard(world: World) -> Guard:
    return Guard(hasher=world.hasher, throttle=world.throttle, policy=world.throttle_policy)


async def a_user(world: World, email: str, *, admin: bool = False) -> str:
    user = await handlers.register(
        Register(email=email, password=PASSWORD),
        users=world.users,
        hasher=world.hasher,
        clock=world.clock,
        admin_emails=frozenset({email}) if admin else frozenset(),
    )
    return user.id


async def test_registration_is_throttled_per_address(world: World) -> None:
    async def attempt(n: int, ip: str) -> None:
        await handlers.register(
            Register(email=f"u{n}-{ip}@example.com", password=PASSWORD, client_ip=ip),
            users=world.users,
            hasher=world.hasher,
            clock=world.clock,
            throttle=world.throttle,
            throttle_policy=world.throttle_policy,
        )

    await attempt(1, "192.0.2.1")
    with pytest.raises(errors.WeakPassword):  # a refused attempt counts too
        await handlers.register(
            Register(email="x@example.com", password="short", client_ip="192.0.2.1"),
            users=world.users,
            hasher=world.hasher,
            clock=world.clock,
            throttle=world.throttle,
            throttle_policy=world.throttle_policy,
        )
    with pytest.raises(errors.LoginThrottled) as err:
        await attempt(3, "192.0.2.1")
    assert err.value.retry_after >= 1
    await attempt(4, "192.0.2.2")  # another address is not affected
    assert len(world.users.rows) == 2


async def test_admin_emails_make_the_first_admin_at_registration_and_at_login(world: World) -> None:
    uid = await a_user(world, "boss@example.com", admin=True)
    assert world.users.rows[uid].role == "admin"
    other = await a_user(world, "later@example.com")
    assert world.users.rows[other].role == "user"
    await handlers.login(
        handlers.Login(email="later@example.com", password=PASSWORD),
        users=world.users,
        hasher=world.hasher,
        throttle=world.throttle,
        throttle_policy=world.throttle_policy,
        tokens=world.tokens,
        clock=world.clock,
        admin_emails=frozenset({"later@example.com"}),
    )
    assert world.users.rows[other].role == "admin"


async def test_a_disabled_account_cannot_log_in_refresh_or_read_me(world: World) -> None:
    admin = await a_user(world, "boss@example.com", admin=True)
    await world.register()
    pair = await world.login()
    [user] = [u for u in world.users.rows.values() if u.email == "ada@example.com"]
    await accounts.set_disabled(
        admin, user.id, True, users=world.users, refresh_tokens=world.refresh_tokens, clock=world.clock
    )
    assert isinstance(world.users.events[-1], UserDisabled)
    with pytest.raises(errors.AccountDisabled):
        await world.login()
    with pytest.raises(errors.InvalidCredentials):  # a wrong password does not learn the account is disabled
        await world.login(password="wrong password!")
    with pytest.raises(errors.InvalidRefreshToken):  # revoked with the disable
        await world.refresh(pair.refresh_token)
    with pytest.raises(errors.AccountDisabled):
        await handlers.current_user(user.id, users=world.users)
    await accounts.set_disabled(
        admin, user.id, False, users=world.users, refresh_tokens=world.refresh_tokens, clock=world.clock
    )
    assert isinstance(world.users.events[-1], UserEnabled)
    assert (await world.login()).access_token


async def test_refresh_of_an_account_disabled_after_issue_is_refused(world: World) -> None:
    await world.register()
    pair = await world.login()
    [user] = world.users.rows.values()
    await world.users.set_disabled(user.id, True)  # e.g. by another replica, refresh tokens not yet revoked
    with pytest.raises(errors.AccountDisabled):
        await world.refresh(pair.refresh_token)


async def test_only_a_current_admin_manages_users_and_not_their_own_account(world: World) -> None:
    admin = await a_user(world, "boss@example.com", admin=True)
    user = await a_user(world, "ada@example.com")
    with pytest.raises(errors.NotAdmin):
        await accounts.list_users(user, users=world.users, offset=0, limit=10)
    rows, total = await accounts.list_users(admin, users=world.users, offset=0, limit=1000)
    assert total == 2
    assert len(rows) == 2
    page, _ = await accounts.list_users(admin, users=world.users, offset=1, limit=1)
    assert [u.id for u in page] == [rows[1].id]
    assert (await accounts.set_role(admin, user, "admin", users=world.users)).role == "admin"
    await accounts.set_role(user, admin, "user", users=world.users)  # the new admin demotes the first one
    with pytest.raises(errors.NotAdmin):  # at once: the stored role counts, not the token's claim
        await accounts.get_user(admin, user, users=world.users)
    for action in (
        accounts.set_role(user, user, "user", users=world.users),
        accounts.set_disabled(
            user, user, True, users=world.users, refresh_tokens=world.refresh_tokens, clock=world.clock
        ),
        accounts.admin_delete(
            user, user, users=world.users, refresh_tokens=world.refresh_tokens, clock=world.clock
        ),
    ):
        with pytest.raises(errors.CannotChangeSelf):
            await action
    with pytest.raises(errors.AccountNotFound):
        await accounts.get_user(user, "nobody", users=world.users)


async def test_admin_delete_erases_and_publishes_user_deleted(world: World) -> None:
    admin = await a_user(world, "boss@example.com", admin=True)
    await world.register()
    pair = await world.login()
    [user] = [u for u in world.users.rows.values() if u.email == "ada@example.com"]
    await accounts.admin_delete(
        admin, user.id, users=world.users, refresh_tokens=world.refresh_tokens, clock=world.clock
    )
    assert user.id not in world.users.rows
    event = world.users.events[-1]
    assert isinstance(event, UserDeleted)
    assert (event.user_id, event.by) == (user.id, admin)
    with pytest.raises(errors.InvalidRefreshToken):
        await world.refresh(pair.refresh_token)


async def test_password_change_needs_the_current_password_and_ends_other_sessions(world: World) -> None:
    await world.register()
    other_session = await world.login()
    [user] = world.users.rows.values()

    def change(current: str | None, age: timedelta = timedelta(hours=1)) -> ChangePassword:
        return ChangePassword(
            user_id=user.id,
            current_password=current,
            new_password=NEW_PASSWORD,
            token_issued_at=world.clock() - age,
            client_ip="192.0.2.9",
        )

    with pytest.raises(errors.ReauthenticationRequired):
        await accounts.change_password(
            change("wrong password!"),
            users=world.users,
            guard=guard(world),
            tokens=world.tokens,
            clock=world.clock,
        )
    with pytest.raises(errors.ReauthenticationRequired):  # an account with a password always needs it
        await accounts.change_password(
            change(None, timedelta(0)),
            users=world.users,
            guard=guard(world),
            tokens=world.tokens,
            clock=world.clock,
        )
    pair = await accounts.change_password(
        change(PASSWORD), users=world.users, guard=guard(world), tokens=world.tokens, clock=world.clock
    )
    assert pair.access_token
    with pytest.raises(errors.InvalidRefreshToken):
        await world.refresh(other_session.refresh_token)
    assert (await world.refresh(pair.refresh_token)).access_token
    with pytest.raises(errors.InvalidCredentials):
        await world.login()
    assert (await world.login(password=NEW_PASSWORD)).access_token


async def test_wrong_current_passwords_are_throttled(world: World) -> None:
    await world.register()
    [user] = world.users.rows.values()
    cmd = ChangePassword(
        user_id=user.id,
        current_password="wrong password!",
        new_password=NEW_PASSWORD,
        token_issued_at=world.clock(),
        client_ip="192.0.2.9",
    )
    raised = []
    for _ in range(6):
        try:
            await accounts.change_password(
                cmd, users=world.users, guard=guard(world), tokens=world.tokens, clock=world.clock
            )
        except errors.AuthError as exc:
            raised.append(type(exc))
    assert errors.LoginThrottled in raised


async def test_delete_account_needs_the_password_or_for_oauth_only_a_recent_login(world: World) -> None:
    await world.register()
    [user] = world.users.rows.values()
    oauth_only = User(id="gh-1", email="gh@example.com", name=None, created_at=world.clock())
    await world.users.add(oauth_only)

    def delete(uid: str, password: str | None, age: timedelta) -> DeleteAccount:
        return DeleteAccount(user_id=uid, password=password, token_issued_at=world.clock() - age)

    async def run(cmd: DeleteAccount) -> None:
        await accounts.delete_account(
            cmd, users=world.users, refresh_tokens=world.refresh_tokens, guard=guard(world), clock=world.clock
        )

    for cmd in (
        delete(user.id, None, timedelta(0)),  # a password account always needs the password
        delete(user.id, "wrong password!", timedelta(0)),
        delete(oauth_only.id, None, timedelta(minutes=30)),  # no password: the login must be recent
    ):
        with pytest.raises(errors.ReauthenticationRequired):
            await run(cmd)
    assert {user.id, oauth_only.id} <= set(world.users.rows)
    await run(delete(oauth_only.id, None, timedelta(minutes=1)))
    await run(delete(user.id, PASSWORD, timedelta(hours=2)))
    assert world.users.rows == {}
    deleted = [e for e in world.users.events if isinstance(e, UserDeleted)]
    assert [(e.user_id, e.by) for e in deleted] == [(oauth_only.id, "self"), (user.id, "self")]


def test_hash_concurrency_is_sized_to_the_memory_budget() -> None:
    assert hash_concurrency(256, 65536) == 4
    assert hash_concurrency(512, 65536) == 8
    assert hash_concurrency(32, 65536) == 1  # never zero


async def test_hash_gate_caps_running_hashes_and_refuses_beyond_the_queue() -> None:
    gate = HashGate(concurrency=2, max_waiting=3)
    release = threading.Event()

    def slow() -> int:
        release.wait(5)
        return 1

    tasks = [asyncio.create_task(gate.run(slow)) for _ in range(5)]
    await asyncio.sleep(0.05)
    started = time.monotonic()
    with pytest.raises(errors.ServerBusy) as err:  # the 6th: refused at once, not queued
        await gate.run(slow)
    assert time.monotonic() - started < 0.05
    assert err.value.retry_after >= 1
    release.set()
    assert sum(await asyncio.gather(*tasks)) == 5
    assert gate.max_running == 2
    assert gate.refused == 1
    assert await gate.run(lambda: 7) == 7  # the queue drained: admitted again


def test_in_flight_per_address_refuses_beyond_the_limit_and_frees_on_release() -> None:
    slots = InFlightPerAddress(2)
    assert slots.try_acquire("a")
    assert slots.try_acquire("a")
    assert not slots.try_acquire("a")
    assert slots.try_acquire("b")  # another address has its own slots
    slots.release("a")
    assert slots.try_acquire("a")
    for _ in range(3):
        slots.release("a")
    assert slots.try_acquire("a")
    assert slots.try_acquire("a")
