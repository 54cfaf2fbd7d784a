"""The browser tier's own checks catch what they look for: each one run on a small page made to fail it (and on
one made to pass it), in the same Chromium, with no stack. A check that cannot fail would let a console that
stores its token in localStorage, hides its focus ring or scrolls sideways at 200 % pass the tier."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.browser.console import (
    assert_no_token_readable,
    focus_visible,
    no_horizontal_scroll,
    on_screen,
    progress_percent,
    tab_to,
)

pytestmark = pytest.mark.browser

TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl"


@pytest.fixture
def blank(browser: Browser) -> Iterator[Page]:
    ctx: BrowserContext = browser.new_context(viewport={"width": 640, "height": 450})
    try:
        page = ctx.new_page()
        # web storage needs an origin: a page on a URL that Playwright answers itself (nothing goes on the network)
        page.route(
            "http://console.test/**", lambda route: route.fulfill(body="<!doctype html><title>t</title>")
        )
        page.goto("http://console.test/")
        yield page
    finally:
        ctx.close()


def test_token_in_web_storage_is_caught(blank: Page) -> None:
    assert_no_token_readable(blank, "some-secret")
    blank.evaluate("t => sessionStorage.setItem('auth', JSON.stringify({token: t}))", TOKEN)
    with pytest.raises(AssertionError, match="localStorage/sessionStorage"):
        assert_no_token_readable(blank, TOKEN)
    with pytest.raises(AssertionError, match="JWT"):
        assert_no_token_readable(blank, "another-secret")


def test_readable_cookie_is_caught(blank: Page) -> None:
    blank.evaluate("document.cookie = 'llmts_refresh=abc123; path=/'")
    with pytest.raises(AssertionError, match=r"document\.cookie"):
        assert_no_token_readable(blank, "abc123")


def test_hidden_focus_ring_is_caught(blank: Page) -> None:
    blank.set_content(
        "<label>Email <input id=a style='outline: none'></label>"
        "<label>Password <input id=b style='outline: 2px solid blue'></label>"
    )
    bare, ringed = blank.get_by_label("Email"), blank.get_by_label("Password")
    assert tab_to(blank, bare) == 1
    assert not focus_visible(bare)
    assert tab_to(blank, ringed) == 1
    assert focus_visible(ringed)


def test_unreachable_by_tab_is_caught(blank: Page) -> None:
    blank.set_content("<label>Email <input tabindex=-1></label>")
    with pytest.raises(AssertionError, match="never reached"):
        tab_to(blank, blank.get_by_label("Email"))


def test_horizontal_scroll_and_off_screen_controls_are_caught(blank: Page) -> None:
    blank.set_content("<form style='width: 1200px'><button style='margin-left: 900px'>Save</button></form>")
    scroll_width, width = no_horizontal_scroll(blank)
    assert scroll_width > width
    with pytest.raises(AssertionError):
        on_screen(blank.get_by_role("button", name="Save"))
    blank.set_content("<form style='max-width: 100%'><button>Save</button></form>")
    scroll_width, width = no_horizontal_scroll(blank)
    assert scroll_width <= width
    on_screen(blank.get_by_role("button", name="Save"))


def test_progress_reads_native_and_aria_bars(blank: Page) -> None:
    blank.set_content(
        "<progress aria-label='Native' max='40' value='10'></progress>"
        "<div role='progressbar' aria-label='Custom' aria-valuenow='3' aria-valuemax='4'></div>"
    )
    assert progress_percent(blank.get_by_role("progressbar", name="Native")) == 25
    assert progress_percent(blank.get_by_role("progressbar", name="Custom")) == 75
