"""OAuth against a local fake Google (OIDC) / GitHub server: the real Authlib clients, PKCE, state, id_token
verification, verified-email rules, and every failure refused cleanly with the error body."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc.jwk import RSAKey
from services.auth.tests.support import BASE, drop_database, make_settings, unique_email
from tests.fakes.oauth import FakeOAuth, FakeUser

from llmts_auth.bootstrap import bootstrap

pytestmark = pytest.mark.connected


def gh_id() -> str:
    return str(uuid.uuid4().int % 10**9)


async def authorize(client: httpx.AsyncClient, provider: str) -> httpx.Response:
    """Start the login, let the fake provider 'consent', and return its redirect back to our callback."""
    start = await client.get(f"/auth/oauth/{provider}")
    assert start.status_code == 302, start.text
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(start.headers["location"])
    assert answer.status_code == 302, answer.text
    return answer


async def callback(
    client: httpx.AsyncClient, provider: str, location: str, **override: str | None
) -> httpx.Response:
    parts = urlsplit(location)
    assert parts.path == f"/auth/oauth/{provider}/callback"
    params: dict[str, Any] = {k: v[0] for k, v in parse_qs(parts.query).items()}
    for key, value in override.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return await client.get(f"/auth/oauth/{provider}/callback", params=params)


async def login_with(client: httpx.AsyncClient, provider: str) -> httpx.Response:
    answer = await authorize(client, provider)
    return await callback(client, provider, answer.headers["location"])


def assert_error(resp: httpx.Response, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]


async def test_start_redirects_with_state_and_pkce(client: httpx.AsyncClient, oauth: FakeOAuth) -> None:
    for provider, expect_nonce in (("google", True), ("github", False)):
        resp = await client.get(f"/auth/oauth/{provider}")
        assert resp.status_code == 302
        url = urlsplit(resp.headers["location"])
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        assert url.path == f"/{provider}/authorize"
        assert q["response_type"] == "code"
        assert q["redirect_uri"] == f"http://127.0.0.1:8000/auth/oauth/{provider}/callback"
        assert len(q["state"]) >= 32
        assert q["code_challenge_method"] == "S256"
        assert len(q["code_challenge"]) == 43
        assert ("nonce" in q) is expect_nonce
        assert "code_verifier" not in q
        assert resp.headers["cache-control"] == "no-store"


async def test_google_login_creates_the_account(client: httpx.AsyncClient, oauth: FakeOAuth) -> None:
    email = unique_email("goog")
    oauth.google_user = FakeUser(subject=f"g-{uuid.uuid4().hex}", email=email, name="Grace")
    resp = await login_with(client, "google")
    assert resp.status_code == 200, resp.text
    pair = resp.json()
    me = (await client.get("/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"})).json()
    assert me["email"] == email.lower()
    assert me["name"] == "Grace"
    [token_request] = oauth.token_requests
    assert len(token_request["form"]["code_verifier"]) >= 43  # PKCE verifier sent on exchange
    # second login: same account (found by identity)
    again = await login_with(client, "google")
    me2 = (
        await client.get("/auth/me", headers={"Authorization": f"Bearer {again.json()['access_token']}"})
    ).json()
    assert me2["id"] == me["id"]


async def test_github_login_links_an_existing_password_account(
    client: httpx.AsyncClient, oauth: FakeOAuth
) -> None:
    email = unique_email("hub")
    user = (
        await client.post("/auth/register", json={"email": email, "password": "long enough secret"})
    ).json()
    oauth.github_user = FakeUser(subject=gh_id(), email=email.upper(), login="octo")
    resp = await login_with(client, "github")
    assert resp.status_code == 200, resp.text
    me = (
        await client.get("/auth/me", headers={"Authorization": f"Bearer {resp.json()['access_token']}"})
    ).json()
    assert me["id"] == user["id"]
    # the password still works too
    assert (
        await client.post("/auth/login", json={"email": email, "password": "long enough secret"})
    ).status_code == 200


async def test_state_mismatch_and_replay(client: httpx.AsyncClient, oauth: FakeOAuth) -> None:
    oauth.github_user = FakeUser(subject=gh_id(), email=unique_email())
    answer = await authorize(client, "github")
    assert_error(
        await callback(client, "github", answer.headers["location"], state="forged"), 400, "invalid_state"
    )
    assert_error(
        await callback(client, "github", answer.headers["location"], state=None), 400, "invalid_state"
    )
    # the real state works once, then never again
    assert (await callback(client, "github", answer.headers["location"])).status_code == 200
    assert_error(await callback(client, "github", answer.headers["location"]), 400, "invalid_state")
    # a google state is not valid on the github callback
    oauth.google_user = FakeUser(subject="g-x", email=unique_email())
    google_answer = await authorize(client, "google")
    location = google_answer.headers["location"].replace("/google/", "/github/")
    assert_error(await callback(client, "github", location), 400, "invalid_state")


async def test_missing_code(client: httpx.AsyncClient, oauth: FakeOAuth) -> None:
    oauth.google_user = FakeUser(subject="g-y", email=unique_email())
    answer = await authorize(client, "google")
    assert_error(await callback(client, "google", answer.headers["location"], code=None), 400, "missing_code")


async def test_user_denied_consent(client: httpx.AsyncClient, oauth: FakeOAuth) -> None:
    oauth.deny_next = True
    answer = await authorize(client, "github")
    resp = await callback(client, "github", answer.headers["location"])
    assert_error(resp, 400, "oauth_denied")
    assert resp.json()["error"]["details"]["error"] == "access_denied"


async def test_unverified_email_is_refused(client: httpx.AsyncClient, oauth: FakeOAuth) -> None:
    email = unique_email("unverified")
    oauth.google_user = FakeUser(subject=f"g-{uuid.uuid4().hex}", email=email, email_verified=False)
    assert_error(await login_with(client, "google"), 403, "email_not_verified")
    oauth.github_user = FakeUser(
        subject=gh_id(),
        email=email,
        email_verified=False,  # primary unverified, even with a verified secondary address
        other_emails=[{"email": unique_email(), "primary": False, "verified": True, "visibility": None}],
    )
    assert_error(await login_with(client, "github"), 403, "email_not_verified")
    oauth.github_user = FakeUser(subject=gh_id(), email=None)
    assert_error(await login_with(client, "github"), 403, "email_not_verified")
    # nothing was created for the unverified address
    resp = await client.post("/auth/login", json={"email": email, "password": "whatever at all"})
    assert resp.status_code == 401


async def test_provider_errors(client: httpx.AsyncClient, oauth: FakeOAuth) -> None:
    oauth.google_user = FakeUser(subject="g-z", email=unique_email())
    oauth.github_user = FakeUser(subject=gh_id(), email=unique_email())
    oauth.token_error = "invalid_grant"  # Google: 400 {"error"}
    resp = await login_with(client, "google")
    assert_error(resp, 400, "oauth_exchange_failed")
    assert resp.json()["error"]["details"]["error"] == "invalid_grant"
    oauth.token_error = "bad_verification_code"  # GitHub: 200 {"error"}
    resp = await login_with(client, "github")
    assert_error(resp, 400, "oauth_exchange_failed")
    assert resp.json()["error"]["details"]["error"] == "bad_verification_code"
    oauth.token_error = None
    oauth.token_status_5xx = True
    assert_error(await login_with(client, "github"), 502, "provider_unavailable")


async def test_forged_or_mismatched_id_token(client: httpx.AsyncClient, oauth: FakeOAuth) -> None:
    oauth.google_user = FakeUser(subject="g-forged", email=unique_email())
    oauth.id_token_signing_key = RSAKey.generate_key(2048, private=True)  # same kid, wrong key
    assert_error(await login_with(client, "google"), 400, "invalid_id_token")
    oauth.id_token_signing_key = None
    for override in ({"nonce": "replayed"}, {"aud": "someone-else"}, {"iss": "https://evil.example"}):
        oauth.id_token_overrides = override
        assert_error(await login_with(client, "google"), 400, "invalid_id_token")


async def test_unknown_provider_is_404(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/auth/oauth/myspace"), 404, "unknown_provider")
    assert_error(await client.get("/auth/oauth/myspace/callback?code=x&state=y"), 404, "unknown_provider")


@pytest.fixture
async def unconfigured() -> AsyncIterator[httpx.AsyncClient]:
    app, _ = bootstrap(make_settings())  # no client ids: both providers unconfigured (nothing is started)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        yield c


async def test_unconfigured_provider_is_503(unconfigured: httpx.AsyncClient) -> None:
    for provider in ("google", "github"):
        resp = await unconfigured.get(f"/auth/oauth/{provider}")
        assert_error(resp, 503, "provider_not_configured")
        assert provider in resp.json()["error"]["message"]


async def test_frontend_redirect_carries_tokens_in_the_fragment(oauth: FakeOAuth) -> None:
    settings = make_settings(**oauth.settings(), frontend_url="http://127.0.0.1:5173/oauth-done")
    app, _ = bootstrap(settings)
    oauth.github_user = FakeUser(subject=gh_id(), email=unique_email("front"))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
            answer = await authorize(c, "github")
            resp = await callback(c, "github", answer.headers["location"])
        assert resp.status_code == 302
        location = urlsplit(resp.headers["location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == "http://127.0.0.1:5173/oauth-done"
        assert not location.query  # tokens never in the query string (logs, Referer)
        fragment = parse_qs(location.fragment)
        assert fragment["token_type"] == ["bearer"]
        assert fragment["access_token"][0].count(".") == 2
        assert fragment["refresh_token"][0]
    await drop_database(settings)  # after shutdown: the outbox relay would re-create it
