"""Browser-tier fixtures: one real stack (six services + fake providers, as in tests/e2e) per session, Debian's
Chromium driven headless by Playwright, and a screenshot recorder per test.

Chromium comes from ``CHROMIUM_PATH`` or ``scripts/browser.sh path`` (which finds Debian's ``chromium``);
``scripts/browser.sh ensure`` installs it. Nothing here downloads a browser build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.browser.console import SUMMARY, Shots, register_user
from tests.e2e.stack import ROOT, Stack, new_stack

SCREENSHOTS = ROOT / "var" / "screenshots"
# `expect(...)` retries for 15 s (Playwright's default is 5 s): the stack shares 2 cores with the other tiers
expect.set_options(timeout=15_000)


def chromium_path() -> str:
    """The system Chromium; a clear failure (not a skip) when there is none."""
    explicit = os.environ.get("CHROMIUM_PATH")
    if explicit:
        return explicit
    found = subprocess.run(
        ["bash", str(ROOT / "scripts" / "browser.sh"), "path"], capture_output=True, text=True, check=False
    ).stdout.strip()
    path = found or shutil.which("chromium") or ""
    if not path:
        pytest.fail("no Chromium: run `bash scripts/browser.sh ensure` (installs Debian's chromium)")
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests get 300 s (the default 120 s covers the first one's stack start, a 20-item job and an export
    only on an idle machine); a test's own timeout mark wins."""
    for item in items:
        if "/tests/browser/" in str(item.path).replace("\\", "/") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(300))


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    s = new_stack()
    try:
        s.start()
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def context(browser: Browser, stack: Stack) -> Iterator[BrowserContext]:
    ctx = browser.new_context(
        base_url=stack.gateway, viewport={"width": 1280, "height": 900}, accept_downloads=True, locale="ru-RU"
    )
    ctx.set_default_timeout(15_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def shots(request: pytest.FixtureRequest, page: Page) -> Iterator[Shots]:
    """``shots("step")`` saves ``var/screenshots/<test>/<nn-step>.png``; a failed test gets a last ``nn-failed``
    screenshot, and every screenshot is kept (a new run of the same test replaces its folder)."""
    folder = SCREENSHOTS / request.node.name.replace("[", "-").replace("]", "").replace("/", "-")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    recorder = Shots(folder, page)
    yield recorder
    if request.node.stash.get(FAILED, False) and not page.is_closed():
        recorder("failed")


@pytest.fixture
def new_user(stack: Stack) -> tuple[str, str]:
    """An account registered through the API (for the tests whose subject is not registration)."""
    with httpx.Client(base_url=stack.gateway, timeout=30.0) as client:
        return register_user(client)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The figures the tests recorded (the budget line), so they show in `make test` output without -s."""
    for line in SUMMARY:
        terminalreporter.write_line(line)
