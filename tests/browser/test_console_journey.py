"""Issue 20's journey in a real browser, as a person who has never used curl: register → import an example →
edit the prompt and see the preview change → start a 20-item job → watch the bar reach 100 % → download the CSV
and check its rows → see the job in history. A screenshot of each step goes to
``var/screenshots/test_console_journey/``.

The CSV is checked against the job's result read through the API with the same account (the browser's figures
are not trusted to check themselves)."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.console import (
    PASSWORD,
    Shots,
    import_example,
    preview_user,
    progress_percent,
    register,
    save,
    wait_preview_contains,
    wait_route,
)
from tests.e2e.stack import Stack

pytestmark = pytest.mark.browser

N = 20
JOB_TIMEOUT_MS = 90_000
TERMINAL = {"completed", "completed_with_errors", "stopped", "failed", "cancelled"}


# the fake OpenRouter answers 4 calls at a time after 400 ms: the 20 items take ~2 s, so the bar is seen moving
PACED = {"latency_ms": 400, "max_concurrency": 4, "over_capacity": "queue"}


@pytest.fixture
def paced_provider(stack: Stack) -> Iterator[None]:
    url = f"{stack.fake_openrouter}/_fake/config"
    before = httpx.get(url, timeout=10).json()
    httpx.post(url, json=PACED, timeout=10).raise_for_status()
    try:
        yield
    finally:
        httpx.post(url, json={k: before[k] for k in PACED}, timeout=10).raise_for_status()


def api_result(stack: Stack, email: str, job_id: str) -> list[dict[str, object]]:
    """The job's items through the gateway's API, signed in as the same person."""
    with httpx.Client(base_url=stack.gateway, timeout=30.0) as client:
        r = client.post("/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        r = client.get(f"/generate/{job_id}/result", headers=headers, params={"limit": 100})
        assert r.status_code == 200, r.text
        items: list[dict[str, object]] = r.json()["items"]
        return items


def edit_prompt(page: Page, shots: Shots) -> None:
    """Append a line to the user prompt and see the rendered preview of item 0 follow it."""
    expect(page.get_by_test_id("preview-user-0")).to_contain_text("physics")
    before = preview_user(page)
    shots("editor with preview")
    prompt = page.get_by_label("User prompt")
    prompt.press("Control+End")
    prompt.press_sequentially("\nKeep it short. Topic code: {{ topic | upper }}-{{ index }}.")
    wait_preview_contains(page, "Topic code: PHYSICS-0.")
    assert preview_user(page) != before
    # item 1 of the preview renders with its own index (the preview is per item, not the raw text)
    page.get_by_label("Preview items").fill("2")
    wait_preview_contains(page, "Topic code: PHYSICS-1.", item=1)
    shots("preview follows the edited prompt")
    save(page)
    shots("saved")


def start_job(page: Page, template_id: str, shots: Shots) -> str:
    page.get_by_role("link", name="Run").click()
    wait_route(page, f"/run/{template_id}")
    model = page.get_by_label("Model")
    expect(model).to_be_enabled()
    selected = model.evaluate("el => el.selectedOptions.length ? el.selectedOptions[0].textContent : ''")
    assert selected.strip(), "no model is selected on the run page"
    page.get_by_label("Count").fill(str(N))
    expect(page.get_by_role("status").filter(has_text=re.compile(r"\d"))).to_be_visible()
    shots("run page with cost estimate")
    page.get_by_role("button", name="Start job").click()
    return wait_route(page, r"/jobs/(?P<id>[\w-]+)")["id"]


def watch_job(page: Page, shots: Shots) -> None:
    bar = page.get_by_role("progressbar", name="Job progress")
    expect(bar).to_be_visible()
    shots("job started")
    status = page.get_by_test_id("job-status")
    seen = [progress_percent(bar)]
    deadline = time.monotonic() + JOB_TIMEOUT_MS / 1000
    # until the job ends (a failed job stops the wait at once) and, if it completed, the bar shows it
    while time.monotonic() < deadline:
        word = status.inner_text().strip()
        if word in TERMINAL and (word != "completed" or seen[-1] == 100):
            break
        page.wait_for_timeout(100)
        seen.append(progress_percent(bar))
    errors = page.get_by_role("alert").filter(has_text=re.compile(r"\S")).all_inner_texts()
    assert status.inner_text().strip() == "completed", f"the job ended {status.inner_text()!r}: {errors}"
    assert seen[-1] == 100, f"the bar stopped at {seen[-1]} %"
    assert seen == sorted(seen), f"the bar went backwards: {seen}"
    assert any(0 < v < 100 for v in seen), f"the bar never showed progress between 0 and 100 %: {seen}"
    expect(page.get_by_test_id("count-succeeded")).to_contain_text(str(N))
    expect(page.get_by_test_id("count-rejected")).to_contain_text("0")
    shots("job completed at 100 percent")


def download_csv(page: Page, shots: Shots, folder: Path) -> list[dict[str, str]]:
    page.get_by_role("button", name="Export CSV").click()
    link = page.get_by_role("link", name="Download CSV")
    expect(link).to_be_visible(timeout=JOB_TIMEOUT_MS)
    shots("csv export ready")
    with page.expect_download() as info:
        link.click()
    target = folder / "export.csv"
    info.value.save_as(target)
    return list(csv.DictReader(io.StringIO(target.read_bytes().decode("utf-8-sig"), newline="")))


def test_console_journey(page: Page, shots: Shots, stack: Stack, paced_provider: None) -> None:
    email = register(page)
    shots("registered and signed in")

    template_id = import_example(page, "quiz")
    expect(page.get_by_label("Name")).to_have_value("Quiz questions")
    # the editor shows the imported document whole: the example's JSON Schema, rules and tasks
    expect(page.get_by_label("JSON Schema")).to_have_value(re.compile(r'"question"[\s\S]*"answer"'))
    expect(page.get_by_label("Rules")).to_have_value(re.compile(r'"path": "question"'))
    expect(page.get_by_label("Tasks")).to_have_value(re.compile(r'"topic": "physics"'))
    edit_prompt(page, shots)

    job_id = start_job(page, template_id, shots)
    watch_job(page, shots)
    items = api_result(stack, email, job_id)
    assert len(items) == N
    questions = [str(it["data"]["question"]) for it in items]  # type: ignore[index]
    expect(page.get_by_role("table", name="Items", exact=True)).to_contain_text(questions[0])

    rows = download_csv(page, shots, shots.folder)
    assert len(rows) == N
    assert [r["question"].lstrip("'") for r in rows] == questions
    assert all(re.fullmatch(r"[A-D]", r["answer"]) for r in rows), [r["answer"] for r in rows]

    page.get_by_role("navigation", name="Main").get_by_role("link", name="History").click()
    wait_route(page, "/history")
    jobs = page.get_by_role("table", name="Jobs")
    expect(jobs.get_by_role("link", name=job_id)).to_be_visible()
    expect(jobs.get_by_role("row").filter(has=page.get_by_role("link", name=job_id))).to_contain_text(
        "completed"
    )
    shots("job in history")
