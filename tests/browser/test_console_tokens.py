"""Where the console keeps its tokens, seen from the browser: the refresh token in an httpOnly SameSite=Strict
cookie that page scripts cannot read, the access token in memory only (never in localStorage or sessionStorage),
a reload keeps the session through the cookie, the cookie routes refuse a request without the CSRF header, and
signing out ends it all."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.browser.console import REFRESH_COOKIE, Shots, assert_no_token_readable, route, wait_route

pytestmark = pytest.mark.browser


# a refresh from page script with the cookies but without the X-CSRF-Token header
REFRESH_WITHOUT_CSRF = """async () => {
  const r = await fetch('/auth/session/refresh', {method: 'POST', credentials: 'same-origin'});
  return r.status;
}"""


def sign_in_capturing_token(page: Page, email: str, password: str) -> str:
    """Sign in through the form; the access token the gateway answered to the console."""
    page.goto("/ui/#/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    with page.expect_response(lambda r: r.url.endswith("/auth/session/login")) as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 200, answer.value.text()
    token = str(answer.value.json()["access_token"])
    wait_route(page, "/templates")
    return token


def refresh_cookie(context: BrowserContext) -> dict[str, object]:
    cookies = [c for c in context.cookies() if c["name"] == REFRESH_COOKIE and c["value"]]
    assert len(cookies) == 1, context.cookies()
    return dict(cookies[0])


def test_tokens_stay_out_of_script_reach(
    page: Page, context: BrowserContext, shots: Shots, new_user: tuple[str, str]
) -> None:
    access = sign_in_capturing_token(page, *new_user)
    cookie = refresh_cookie(context)
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert_no_token_readable(page, access, str(cookie["value"]))
    shots("signed in")

    # a reload forgets the in-memory access token; the console gets a new one through the cookie
    page.reload()
    wait_route(page, "/templates")
    assert_no_token_readable(page, access, str(cookie["value"]))
    shots("still signed in after reload")

    # the cookie alone is not enough: the refresh route wants the CSRF header too (double submit)
    status = page.evaluate(REFRESH_WITHOUT_CSRF)
    assert 400 <= status < 500, f"a refresh without the CSRF header answered {status}"

    page.get_by_role("navigation", name="Main").get_by_role("button", name="Sign out").click()
    wait_route(page, "/login")
    assert not [c for c in context.cookies() if c["name"] == REFRESH_COOKIE and c["value"]]
    page.reload()
    page.wait_for_load_state("networkidle")
    assert route(page) == "/login", "a reload after signing out is signed in again"
    shots("signed out")
