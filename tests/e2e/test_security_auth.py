"""Security suite for accounts (issue 14, findings 3, 4, 13 and the roles), through the gateway of a stack of its
own: proxy headers trusted from nobody (the gateway has no TRUSTED_PROXIES), per account+address backoff that never
locks the owner out, a registration throttle, concurrent failed logins against a memory-sized hash gate, OAuth
state bound to the browser, password change, account erasure in every service, and the admin API.

Every client binds its own loopback source address (127.0.0.x), so the gateway sees distinct client addresses
without believing any header. Durations and memory are printed, never asserted.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pymongo import AsyncMongoClient

from tests.e2e import api
from tests.e2e.stack import Stack, new_stack
from tests.fakes.oauth import FakeOAuth, FakeUser, create_app
from tests.fakes.server import RunningFake

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple 42"
ADMIN_EMAIL = f"sec-admin-{uuid.uuid4().hex[:8]}@example.com"
LIMITS = {
    "REGISTER_MAX_PER_IP": "4",
    "LOGIN_MAX_FAILURES_PER_IP": "6",
    "LOGIN_BACKOFF_FREE_FAILURES": "3",
    "LOGIN_BACKOFF_BASE_SECONDS": "5",  # the attacker's next tries fall inside the wait even on a loaded machine
    "REVOKED_USERS_REFRESH_SECONDS": "1",
    "ADMIN_EMAILS": ADMIN_EMAIL,
}


@pytest.fixture(scope="module")
def oauth_fake() -> Iterator[FakeOAuth]:
    fake = FakeOAuth()
    with RunningFake(create_app(fake)) as running:
        fake.base_url = running.base_url
        yield fake


@pytest.fixture(scope="module")
def sec_stack(oauth_fake: FakeOAuth) -> Iterator[Stack]:
    env = {**LIMITS, **{k.upper(): str(v) for k, v in oauth_fake.settings().items()}}
    s = new_stack(extra_env=env)
    try:
        s.start()
        yield s
    finally:
        s.stop()


_next_host = iter(range(20, 150))  # 150…190: the concurrent-login test's own addresses


def client_at(stack: Stack, host: int | None = None) -> httpx.AsyncClient:
    """A client whose TCP source address is 127.0.0.<host> (a fresh one by default)."""
    address = f"127.0.0.{host if host is not None else next(_next_host)}"
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=stack.gateway, transport=transport, timeout=60.0)


async def sign_up(client: httpx.AsyncClient, email: str | None = None) -> dict[str, Any]:
    email = email or f"sec-{uuid.uuid4().hex[:10]}@example.com"
    r = await client.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    login = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return {"email": email, "id": r.json()["id"], **login.json()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def until_status(
    client: httpx.AsyncClient, token: str, status: int, within: float = 30.0
) -> httpx.Response:
    deadline = time.monotonic() + within
    while True:
        r = await client.get("/auth/session", headers=bearer(token))
        if r.status_code == status or time.monotonic() > deadline:
            return r
        await asyncio.sleep(0.2)


# --- finding 3: proxy headers and lock-out ------------------------------------------------------------------------


async def test_rotating_forwarded_for_does_not_bypass_the_ip_bucket(sec_stack: Stack) -> None:
    async with client_at(sec_stack) as c:
        statuses = []
        for i in range(7):
            r = await c.post(
                "/auth/login",
                json={"email": f"spray-{i}@example.com", "password": "not a password at all"},
                headers={"X-Forwarded-For": f"198.51.100.{i}", "X-Real-IP": f"203.0.113.{i}"},
            )
            statuses.append(r.status_code)
    assert statuses[:6] == [401] * 6
    assert statuses[6] == 429
    assert int(r.headers["retry-after"]) >= 1


async def test_wrong_passwords_from_one_address_do_not_lock_out_the_owner(sec_stack: Stack) -> None:
    async with client_at(sec_stack) as owner_home:
        user = await sign_up(owner_home)
    async with client_at(sec_stack) as attacker:
        statuses = [
            (
                await attacker.post("/auth/login", json={"email": user["email"], "password": "wrong guess!"})
            ).status_code
            for _ in range(5)
        ]
        right = await attacker.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert statuses[:3] == [401] * 3
    assert statuses[3:] in ([401, 429], [429, 429])  # the 4th failure starts the backoff
    assert right.status_code == 429  # the attacker's address is slowed even with the right password
    async with client_at(sec_stack) as owner_elsewhere:
        r = await owner_elsewhere.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert r.status_code == 200, r.text


# --- finding 4: registration throttle, concurrent hashes ------------------------------------------------------------


async def test_registration_is_throttled_per_address(sec_stack: Stack) -> None:
    async with client_at(sec_stack) as c:
        statuses = []
        for _ in range(5):
            r = await c.post(
                "/auth/register",
                json={"email": f"flood-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD},
            )
            statuses.append(r.status_code)
    assert statuses == [201, 201, 201, 201, 429]
    assert r.json()["error"]["code"] == "too_many_attempts"
    assert int(r.headers["retry-after"]) >= 1
    async with client_at(sec_stack) as other:
        await sign_up(other)  # another address is not affected


def _peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def _legit_login_under(stack: Stack, email: str, attacker_hosts: list[int]) -> tuple[float, list[int]]:
    """40 concurrent failed logins from ``attacker_hosts`` and, meanwhile, the owner's login from a clean address
    (retried after Retry-After if the server says it is busy): its latency and the attackers' statuses."""

    async def fail(i: int, host: int) -> int:
        async with client_at(stack, host) as c:
            r = await c.post(
                "/auth/login", json={"email": f"nobody-{i}@example.com", "password": "wrong password"}
            )
            return r.status_code

    async def legit() -> float:
        await asyncio.sleep(0.05)
        async with client_at(stack, 190) as c:
            started = time.monotonic()
            r = await c.post("/auth/login", json={"email": email, "password": PASSWORD})
            while r.status_code == 429:
                await asyncio.sleep(int(r.headers["retry-after"]))
                r = await c.post("/auth/login", json={"email": email, "password": PASSWORD})
            assert r.status_code == 200, r.text
            return time.monotonic() - started

    *statuses, latency = await asyncio.gather(*(fail(i, h) for i, h in enumerate(attacker_hosts)), legit())
    return float(latency), [int(s) for s in statuses]


async def test_concurrent_failed_logins_are_bounded_and_never_fail_the_service(sec_stack: Stack) -> None:
    async with client_at(sec_stack) as home:
        user = await sign_up(home)
    async with client_at(sec_stack, 190) as clean:
        started = time.monotonic()
        assert (
            await clean.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
        ).status_code == 200
        idle_s = time.monotonic() - started
    one_source_s, one_source = await _legit_login_under(sec_stack, user["email"], [191] * 40)
    assert set(one_source) <= {401, 429}
    assert one_source.count(429) >= 30  # at most PASSWORD_CHECKS_PER_ADDRESS (2) in flight from one address
    spread_s, spread = await _legit_login_under(sec_stack, user["email"], list(range(150, 190)))
    assert set(spread) <= {401, 429}  # refused cheaply or failed; never a 5xx
    auth = sec_stack.procs["auth"].popen
    assert auth is not None
    print(
        f"\nlegit login: idle {idle_s:.2f} s; under 40 concurrent failed logins from one address {one_source_s:.2f} s "
        f"({one_source.count(429)} refused at once); from 40 addresses {spread_s:.2f} s ({spread.count(429)} "
        f"refused, server busy); auth peak RSS {_peak_rss_mib(auth.pid):.0f} MiB"
    )


# --- finding 13: OAuth state bound to the browser ---------------------------------------------------------------


async def test_oauth_state_is_bound_to_the_browser(sec_stack: Stack, oauth_fake: FakeOAuth) -> None:
    oauth_fake.github_user = FakeUser(
        subject=str(uuid.uuid4().int % 10**9), email=f"gh-{uuid.uuid4().hex[:8]}@example.com"
    )
    async with (
        client_at(sec_stack) as attacker,
        client_at(sec_stack) as victim,
        httpx.AsyncClient() as provider,
    ):
        start = await attacker.get("/auth/oauth/github")
        assert start.status_code == 302, start.text
        cookie = start.headers["set-cookie"].lower()
        assert "llmts_oauth_state=" in cookie
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        consent = await provider.get(start.headers["location"])
        assert consent.status_code == 302
        query = {k: v[0] for k, v in parse_qs(urlsplit(consent.headers["location"]).query).items()}
        # login CSRF: the attacker's state and code, replayed in the victim's browser (no cookie)
        forced = await victim.get("/auth/oauth/github/callback", params=query)
        assert forced.status_code == 400
        assert forced.json()["error"]["code"] == "invalid_state"
        # the state was spent by that attempt: the flow starts over in the attacker's own browser
        start = await attacker.get("/auth/oauth/github")
        consent = await provider.get(start.headers["location"])
        query = {k: v[0] for k, v in parse_qs(urlsplit(consent.headers["location"]).query).items()}
        own = await attacker.get("/auth/oauth/github/callback", params=query)
        assert own.status_code == 200, own.text
        assert own.json()["access_token"]


# --- finding 13: password change, account erasure ----------------------------------------------------------------


async def test_password_change_ends_other_sessions(sec_stack: Stack) -> None:
    async with client_at(sec_stack) as c:
        user = await sign_up(c)
        other = (await c.post("/auth/login", json={"email": user["email"], "password": PASSWORD})).json()
        wrong = await c.post(
            "/auth/password",
            json={"current_password": "not my password", "new_password": "a new passphrase here"},
            headers=bearer(user["access_token"]),
        )
        assert wrong.status_code == 403
        ok = await c.post(
            "/auth/password",
            json={"current_password": PASSWORD, "new_password": "a new passphrase here"},
            headers=bearer(user["access_token"]),
        )
        assert ok.status_code == 200, ok.text
        assert (
            await c.post("/auth/refresh", json={"refresh_token": other["refresh_token"]})
        ).status_code == 401
        assert (
            await c.post("/auth/refresh", json={"refresh_token": ok.json()["refresh_token"]})
        ).status_code == 200


async def _owned(stack: Stack, user_id: str) -> dict[str, int]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient("mongodb://127.0.0.1:27017")
    try:

        def db(svc: str) -> Any:
            return client[f"llmts_e2e_{stack.run_id}_{svc}"]

        return {
            "templates": await db("templates")["templates"].count_documents({"owner_id": user_id}),
            "generator jobs": await db("generator")["generations"].count_documents({"user_id": user_id}),
            "exports": await db("exporter")["exports"].count_documents({"user_id": user_id}),
            "exporter jobs": await db("exporter")["jobs"].count_documents({"user_id": user_id}),
            "gateway outbox": await db("gateway")["outbox"].count_documents(
                {"envelope.data.user_id": user_id}
            ),
        }
    finally:
        await client.close()


async def test_delete_me_erases_the_user_everywhere(sec_stack: Stack) -> None:
    async with client_at(sec_stack) as c:
        user = await sign_up(c)
        h = bearer(user["access_token"])
        r = await c.post("/templates/examples/quiz/import", headers=h)
        assert r.status_code == 201, r.text
        r = await c.post("/generate", headers=h, json={"template_id": r.json()["template"]["id"], "count": 2})
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        await api.wait_job(c, job_id, h, within=90)
        r = await c.post("/exports", headers=h, json={"job_id": job_id, "format": "csv"})
        assert r.status_code == 202, r.text
        await api.wait_export(c, r.json()["export_id"], h)
        before = await _owned(sec_stack, user["id"])
        assert all(before[k] > 0 for k in ("templates", "generator jobs", "exports", "exporter jobs")), before
        stale = await c.request("DELETE", "/auth/me", json={"password": "not my password"}, headers=h)
        assert stale.status_code == 403
        gone = await c.request("DELETE", "/auth/me", json={"password": PASSWORD}, headers=h)
        assert gone.status_code == 204, gone.text
        refused = await until_status(c, user["access_token"], 401)
        assert refused.json()["error"]["code"] == "account_revoked"
        assert (await c.get("/templates", headers=h)).status_code == 401
        deadline = time.monotonic() + 60
        after = await _owned(sec_stack, user["id"])
        while any(after.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            after = await _owned(sec_stack, user["id"])
        assert not any(after.values()), after
        assert (
            await c.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
        ).status_code == 401


# --- roles ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def admin(sec_stack: Stack) -> AsyncIterator[dict[str, Any]]:
    async with client_at(sec_stack) as c:
        yield await sign_up(c, ADMIN_EMAIL)


async def test_admin_routes_need_the_role_and_grants_take_effect_at_refresh(
    sec_stack: Stack, admin: dict[str, Any]
) -> None:
    async with client_at(sec_stack) as c:
        user = await sign_up(c)
        assert (await c.get("/admin/users", headers=bearer(user["access_token"]))).status_code == 403
        page = await c.get("/admin/users", params={"limit": 100}, headers=bearer(admin["access_token"]))
        assert page.status_code == 200, page.text
        assert {admin["id"], user["id"]} <= {u["id"] for u in page.json()["items"]}
        assert (
            await c.get("/admin/users", params={"limit": 5000}, headers=bearer(admin["access_token"]))
        ).status_code == 422
        granted = await c.put(
            f"/admin/users/{user['id']}/role", json={"role": "admin"}, headers=bearer(admin["access_token"])
        )
        assert granted.json()["role"] == "admin"
        assert (
            await c.get("/admin/users", headers=bearer(user["access_token"]))
        ).status_code == 403  # old token
        fresh = (await c.post("/auth/refresh", json={"refresh_token": user["refresh_token"]})).json()
        assert (await c.get("/admin/users", headers=bearer(fresh["access_token"]))).status_code == 200
        revoked = await c.put(
            f"/admin/users/{user['id']}/role", json={"role": "user"}, headers=bearer(admin["access_token"])
        )
        assert revoked.json()["role"] == "user"
        # the demoted admin's unexpired token carries the old claim: the auth service checks the stored role
        assert (await c.get("/admin/users", headers=bearer(fresh["access_token"]))).status_code == 403


async def test_a_disabled_user_is_refused_at_once_and_enabled_again(
    sec_stack: Stack, admin: dict[str, Any]
) -> None:
    async with client_at(sec_stack) as c:
        user = await sign_up(c)
        ah = bearer(admin["access_token"])
        assert (await c.post(f"/admin/users/{user['id']}/disable", headers=ah)).json()["disabled"] is True
        refused = await until_status(c, user["access_token"], 401)
        assert refused.json()["error"]["code"] == "account_revoked"
        assert (await c.get("/templates", headers=bearer(user["access_token"]))).status_code == 401
        login = await c.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
        assert (login.status_code, login.json()["error"]["code"]) == (403, "account_disabled")
        assert (
            await c.post("/auth/refresh", json={"refresh_token": user["refresh_token"]})
        ).status_code == 401
        assert (await c.post(f"/admin/users/{admin['id']}/disable", headers=ah)).status_code == 409
        assert (await c.post(f"/admin/users/{user['id']}/enable", headers=ah)).json()["disabled"] is False
        again = (await c.post("/auth/login", json={"email": user["email"], "password": PASSWORD})).json()
        assert (await until_status(c, again["access_token"], 200)).status_code == 200
        assert (await c.delete(f"/admin/users/{user['id']}", headers=ah)).status_code == 204
        assert (await until_status(c, again["access_token"], 401)).status_code == 401
        assert (await c.get(f"/admin/users/{user['id']}", headers=ah)).status_code == 404
