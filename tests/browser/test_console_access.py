"""Accessible basics in a real browser: sign in with the keyboard alone (Tab / Enter, focus visible), Cyrillic in
a template's name and prompt round-trips and displays, and at 200 % zoom the main controls stay on screen with no
horizontal scroll of the form.

200 % zoom: a 1280 × 900 window zoomed to 200 % lays pages out in a 640 × 450 CSS-pixel viewport with two device
pixels per CSS pixel — the context below is exactly that (Chromium's zoom changes nothing else for layout)."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.console import (
    PASSWORD,
    Shots,
    focus_visible,
    import_example,
    is_focused,
    no_horizontal_scroll,
    on_screen,
    save,
    sign_in,
    tab_to,
    wait_preview_contains,
    wait_route,
)
from tests.e2e.stack import Stack

pytestmark = pytest.mark.browser

NAME = "Викторина: история Руси — ёжик «Щука»"
PROMPT = "Придумай вопрос №{{ index + 1 }} по теме «{{ topic }}». Ответ — одна буква, А–Г не годятся."


def test_keyboard_only_sign_in(page: Page, shots: Shots, new_user: tuple[str, str]) -> None:
    email, password = new_user
    page.goto("/ui/#/login")
    field = page.get_by_label("Email")
    expect(field).to_be_visible()
    tab_to(page, field)
    assert focus_visible(field), "the focused Email input shows no focus indicator"
    page.keyboard.type(email)
    shots("email typed with focus ring")
    page.keyboard.press("Tab")
    assert is_focused(page.get_by_label("Password")), "Tab from Email does not go to Password"
    assert focus_visible(page.get_by_label("Password"))
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    wait_route(page, "/templates")
    shots("signed in with the keyboard")
    # the navigation is reachable by keyboard too, and Enter follows a link
    models = page.get_by_role("navigation", name="Main").get_by_role("link", name="Models")
    tab_to(page, models)
    assert focus_visible(models), "the focused Models link shows no focus indicator"
    page.keyboard.press("Enter")
    wait_route(page, "/models")
    shots("models reached by keyboard")


def test_cyrillic_template_round_trips(
    page: Page, shots: Shots, stack: Stack, new_user: tuple[str, str]
) -> None:
    email, password = new_user
    sign_in(page, email, password)
    template_id = import_example(page, "quiz")
    page.get_by_label("Name").fill(NAME)
    page.get_by_label("User prompt").fill(PROMPT)
    wait_preview_contains(page, "Придумай вопрос №1 по теме «physics». Ответ — одна буква")
    shots("cyrillic name and prompt with preview")
    save(page)

    # stored as typed: read back through the API with the same account
    with httpx.Client(base_url=stack.gateway, timeout=30.0) as client:
        token = client.post("/auth/login", json={"email": email, "password": PASSWORD}).json()["access_token"]
        saved = client.get(f"/templates/{template_id}", headers={"Authorization": f"Bearer {token}"}).json()
    assert saved["name"] == NAME
    assert saved["prompts"]["user"] == PROMPT

    # and displayed as typed after a reload (the session survives it through the refresh cookie)
    page.goto("/ui/#/templates")
    page.reload()
    wait_route(page, "/templates")
    link = page.get_by_role("table", name="Templates").get_by_role("link", name=NAME, exact=True)
    expect(link).to_be_visible()
    shots("cyrillic name in the list")
    link.click()
    wait_route(page, f"/templates/{template_id}")
    expect(page.get_by_label("Name")).to_have_value(NAME)
    expect(page.get_by_label("User prompt")).to_have_value(PROMPT)
    wait_preview_contains(page, "Придумай вопрос №1 по теме «physics»")
    shots("cyrillic template reopened")


def assert_no_horizontal_scroll(page: Page, where: str) -> None:
    scroll_width, width = no_horizontal_scroll(page)
    assert scroll_width <= width, (
        f"{where}: the page scrolls horizontally at 200 % ({scroll_width} > {width})"
    )


def test_readable_at_200_percent_zoom(
    browser: Browser, stack: Stack, shots: Shots, new_user: tuple[str, str]
) -> None:
    ctx = browser.new_context(
        base_url=stack.gateway, viewport={"width": 640, "height": 450}, device_scale_factor=2
    )
    ctx.set_default_timeout(15_000)
    try:
        page = ctx.new_page()
        shots.page = page
        page.goto("/ui/#/login")
        for control in (
            page.get_by_label("Email"),
            page.get_by_label("Password"),
            page.get_by_role("button", name="Sign in"),
        ):
            on_screen(control)
        assert_no_horizontal_scroll(page, "sign in")
        shots("sign in at 200 percent")

        sign_in(page, *new_user)
        on_screen(page.get_by_label("Example"))
        on_screen(page.get_by_role("button", name="Import example"))
        assert_no_horizontal_scroll(page, "templates")
        shots("templates at 200 percent")

        template_id = import_example(page, "quiz")
        for control in (
            page.get_by_label("Name"),
            page.get_by_label("User prompt"),
            page.get_by_label("JSON Schema"),
            page.get_by_role("region", name="Preview"),
            page.get_by_role("button", name="Save"),
            page.get_by_role("link", name="Run"),
        ):
            on_screen(control)
        assert_no_horizontal_scroll(page, "editor")
        shots("editor at 200 percent")

        page.goto(f"/ui/#/run/{template_id}")
        for control in (
            page.get_by_label("Model"),
            page.get_by_label("Count"),
            page.get_by_role("button", name="Start job"),
        ):
            on_screen(control)
        assert_no_horizontal_scroll(page, "run")
        shots("run at 200 percent")
    finally:
        ctx.close()
