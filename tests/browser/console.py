"""What the browser tests do with the console, by the routes and accessible names its README
(services/gateway/src/llmts_gateway/ui/README.md) promises: a person's view, never the console's internals."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from playwright.sync_api import Locator, Page, expect

PASSWORD = "correct horse battery staple 42"
# figures the tests recorded (the budget line): printed in the terminal summary by conftest.py
SUMMARY: list[str] = []
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")
REFRESH_COOKIE = "llmts_refresh"
STORAGE = "JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"
MAX_TABS = 25


def record(line: str) -> None:
    print(line)
    SUMMARY.append(line)


@dataclass
class Shots:
    """Numbered screenshots of one test: ``var/screenshots/<test>/<nn-step>.png``."""

    folder: Path
    page: Page
    taken: list[Path] = field(default_factory=list)

    def __call__(self, step: str) -> Path:
        slug = re.sub(r"[^a-z0-9]+", "-", step.lower()).strip("-")
        path = self.folder / f"{len(self.taken) + 1:02d}-{slug}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path


def new_email(name: str = "browser") -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


def register_user(client: httpx.Client) -> tuple[str, str]:
    email = new_email()
    r = client.post("/auth/register", json={"email": email, "password": PASSWORD, "name": "browser"})
    assert r.status_code == 201, r.text
    return email, PASSWORD


def route(page: Page) -> str:
    """The console's hash route (``#/templates/<id>`` → ``/templates/<id>``)."""
    return page.evaluate("location.hash").removeprefix("#")


def wait_route(page: Page, pattern: str) -> re.Match[str]:
    """Wait until the hash route matches ``pattern`` (a regex anchored at both ends); its match."""
    page.wait_for_url(re.compile(r".*/ui/#" + pattern + r"$"))
    m = re.fullmatch(pattern, route(page))
    assert m, route(page)
    return m


def sign_in(page: Page, email: str, password: str) -> None:
    page.goto("/ui/#/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    wait_route(page, "/templates")


def register(page: Page) -> str:
    """Register a new account through the console's form; its email (the console lands on the templates)."""
    email = new_email()
    page.goto("/ui/#/register")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Register").click()
    wait_route(page, "/templates")
    return email


def import_example(page: Page, example: str = "quiz") -> str:
    """Import an example from the templates page; the new template's id (the console opens its editor)."""
    page.get_by_label("Example").select_option(example)
    page.get_by_role("button", name="Import example").click()
    return wait_route(page, r"/templates/(?P<id>[\w-]+)")["id"]


def save(page: Page) -> None:
    """Save the template in the editor: a new row in its Versions table, and no error shown (the console keeps
    empty ``role="alert"`` boxes ready; only one with text is an error)."""
    versions = page.get_by_role("table", name="Versions").get_by_role("row")
    expect(versions.nth(1)).to_be_visible()  # the header and at least one version: the table has loaded
    before = versions.count()
    page.get_by_role("button", name="Save").click()
    expect(versions).to_have_count(before + 1, timeout=30_000)
    expect(page.get_by_role("alert").filter(has_text=re.compile(r"\S"))).to_have_count(0)


def preview_user(page: Page, item: int = 0) -> str:
    return page.get_by_test_id(f"preview-user-{item}").inner_text()


def wait_preview_contains(page: Page, text: str, item: int = 0) -> None:
    expect(page.get_by_test_id(f"preview-user-{item}")).to_contain_text(text)
    expect(page.get_by_role("region", name="Preview")).not_to_have_attribute("aria-busy", "true")


def no_horizontal_scroll(page: Page) -> tuple[int, int]:
    """(scrollWidth, innerWidth) of the document: a horizontal scroll bar shows when the first is larger."""
    w = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    return int(w[0]), int(w[1])


def is_focused(el: Locator) -> bool:
    return bool(el.evaluate("el => el === document.activeElement"))


def tab_to(page: Page, el: Locator) -> int:
    """Press Tab until ``el`` has the focus; how many presses it took (fails past MAX_TABS)."""
    for presses in range(MAX_TABS + 1):
        if is_focused(el):
            return presses
        page.keyboard.press("Tab")
    raise AssertionError(f"{MAX_TABS} presses of Tab never reached {el}")


def focus_visible(el: Locator) -> bool:
    """The focused control draws a focus indicator (an outline or a box shadow)."""
    style = el.evaluate(
        "el => { const s = getComputedStyle(el);"
        " return {outline: s.outlineStyle, width: s.outlineWidth, shadow: s.boxShadow}; }"
    )
    outlined = style["outline"] != "none" and style["width"] not in ("0px", "")
    return outlined or style["shadow"] not in ("none", "")


def on_screen(el: Locator) -> None:
    """``el`` is visible and wholly inside the viewport's width without scrolling sideways (its left and right
    edges in page coordinates lie within ``[0, innerWidth]``)."""
    expect(el).to_be_visible()
    left, right, width = el.evaluate(
        "el => { const r = el.getBoundingClientRect(); return [r.left + scrollX, r.right + scrollX, innerWidth]; }"
    )
    assert left >= 0, (left, right, width)
    assert right <= width + 1, (left, right, width)


def progress_percent(bar: Locator) -> float:
    """The bar's value as assistive technology reads it: ``aria-valuenow`` of a custom bar, else the value of a
    native ``<progress>`` (its implicit valuenow), scaled to its maximum."""
    value = bar.evaluate(
        "el => { const now = el.getAttribute('aria-valuenow');"
        " if (now !== null) return Number(now) * 100 / Number(el.getAttribute('aria-valuemax') || 100);"
        " return el.max ? el.value * 100 / el.max : NaN; }"
    )
    return float(value)


def assert_no_token_readable(page: Page, *secrets: str) -> None:
    storage = page.evaluate(STORAGE)
    readable = page.evaluate("document.cookie")
    for secret in secrets:
        assert secret not in storage, "a token is in localStorage/sessionStorage"
        assert secret not in readable, "a token is readable in document.cookie"
    assert not JWT.search(storage), f"a JWT is in web storage: {json.loads(storage)}"
    assert REFRESH_COOKIE not in readable, readable
