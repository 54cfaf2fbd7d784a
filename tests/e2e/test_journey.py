"""The whole user journey through the gateway only, against the real stack and the fake providers:

register → import an example template → preview → dry run → generate 20 items → watch over the WebSocket until
the terminal event (refresh-token rotation happens while watching) → result (exactly N valid items) → every export
format, each opened by an independent reader → history; then a second user sees none of it (404 everywhere).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import time
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from tests.e2e import api
from tests.e2e.conftest import User, register_and_login
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e

N = 20
ROUTES = [
    ("POST", "/templates/examples/{example_id}/import"),
    ("POST", "/templates/preview"),
    ("POST", "/generate"),
    ("GET", "/generate/{job_id}"),
    ("GET", "/generate/{job_id}/result"),
    ("GET", "/history"),
]
EXPORT_ROUTES = [
    ("POST", "/exports"),
    ("GET", "/exports/{export_id}"),
    ("GET", "/exports/{export_id}/download"),
]


@pytest.fixture
async def journey_routes(gateway: httpx.AsyncClient) -> None:
    """The journey goes through every one of these routes: a missing one fails it at once, with its name."""
    await api.require_routes(gateway, [*ROUTES, *EXPORT_ROUTES])


# --- independent readers: each export is opened with a library other than the exporter's writer -----------------


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def read_json(data: bytes) -> list[Any]:
    doc = json.loads(data)
    return doc["items"] if isinstance(doc, dict) else doc


def read_jsonl(data: bytes) -> list[Any]:
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def read_csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def read_xlsx(data: bytes) -> list[tuple[Any, ...]]:
    import openpyxl

    wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    ws = wb.worksheets[0]
    rows = [r for r in ws.iter_rows(values_only=True) if any(v is not None for v in r)]
    return rows[1:]  # minus the header


def read_parquet(data: bytes) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return list(pq.read_table(io.BytesIO(data)).to_pylist())


def read_xml(data: bytes) -> list[Any]:
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(data, parser)
    return list(root.iter("item"))


def read_html(data: bytes) -> str:
    from lxml import html

    doc = html.fromstring(data)
    assert not doc.xpath("//script"), "exported HTML carries a script"
    return _norm(doc.text_content())


def read_pdf(data: bytes) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) >= 1
    return _norm(" ".join(page.extract_text() or "" for page in reader.pages))


def read_md(data: bytes) -> str:
    import markdown
    from lxml import html

    rendered = markdown.markdown(data.decode("utf-8"), extensions=["tables"])
    return _norm(html.fromstring(f"<div>{rendered}</div>").text_content())


def read_txt(data: bytes) -> str:
    return _norm(data.decode("utf-8"))


def check_export(fmt: str, data: bytes, items: list[dict[str, Any]]) -> None:
    """The file holds exactly the job's items, as read by a reader independent of the writer."""
    questions = [it["data"]["question"] for it in items]
    answers = sorted(it["data"]["answer"] for it in items)
    if fmt in ("json", "jsonl"):
        got = read_json(data) if fmt == "json" else read_jsonl(data)
        assert got == [it["data"] for it in items], fmt
    elif fmt == "csv":
        rows = read_csv(data)
        assert len(rows) == N
        assert [r["question"].lstrip("'") for r in rows] == questions
        assert sorted(r["answer"] for r in rows) == answers
    elif fmt == "xlsx":
        rows = read_xlsx(data)
        assert len(rows) == N
        cells = {str(c).lstrip("'") for row in rows for c in row if c is not None}
        assert set(questions) <= cells
    elif fmt == "parquet":
        rows = read_parquet(data)
        assert len(rows) == N
        assert [r["question"] for r in rows] == questions
    elif fmt == "xml":
        elements = read_xml(data)
        assert len(elements) == N
        texts = [_norm(" ".join(el.itertext())) for el in elements]
        for q, text in zip(questions, texts, strict=True):
            assert _norm(q) in text
    else:
        text = {"html": read_html, "pdf": read_pdf, "md": read_md, "txt": read_txt}[fmt](data)
        # PDF wraps long lines: compare without whitespace there
        squash = (lambda s: re.sub(r"\s+", "", s)) if fmt == "pdf" else _norm
        hay = squash(text)
        missing = [q for q in questions if squash(q) not in hay]
        assert not missing, f"{fmt}: {len(missing)} of {N} items not found, e.g. {missing[0]!r}"


# --- validity ----------------------------------------------------------------------------------------------------


def valid_quiz_item(schema: dict[str, Any], data: dict[str, Any]) -> list[str]:
    """The quiz example's schema plus its custom rules (mode `custom`)."""
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(data)]
    q = data.get("question", "")
    if not 10 <= len(q) <= 300:
        errors.append("question length")
    if not re.fullmatch(r"[A-D]", str(data.get("answer"))):
        errors.append("answer")
    if len(data.get("options", [])) != 4:
        errors.append("options count")
    errors += [f"option text {len(o['text'])} > 80" for o in data.get("options", []) if len(o["text"]) > 80]
    return errors


# --- the journey -------------------------------------------------------------------------------------------------


async def test_full_journey(stack: Stack, gateway: httpx.AsyncClient, journey_routes: None) -> None:
    t0 = time.monotonic()
    user = await register_and_login(gateway, "journey")

    # import an example template
    r = await gateway.post("/templates/examples/quiz/import", headers=user.headers)
    assert r.status_code == 201, r.text
    template = r.json()["template"]
    tid = template["id"]
    assert template["owner_id"] == user.user_id

    # preview one item's prompts
    r = await gateway.post(
        "/templates/preview", headers=user.headers, json={"template_id": tid, "index": 4, "count": N}
    )
    assert r.status_code == 200, r.text
    assert "#5" in json.dumps(r.json()), "preview did not render the item index"

    # dry run: rendered prompts and a cost estimate, no job
    r = await gateway.post(
        "/generate", headers=user.headers, json={"template_id": tid, "count": N, "dry_run": True}
    )
    assert r.status_code == 200, r.text
    dry = r.json()
    assert dry["count"] == N
    assert len(dry["items"]) >= 1
    assert "estimate" in dry
    history_before = (await gateway.get("/history", headers=user.headers)).json()
    assert history_before["total"] == 0, "a dry run created a job"

    # generate
    r = await gateway.post("/generate", headers=user.headers, json={"template_id": tid, "count": N})
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]

    # watch over the WebSocket; rotate the refresh token while the job runs
    rotated: dict[str, Any] = {}

    async def rotate_once(_msg: dict[str, Any]) -> None:
        if rotated:
            return
        resp = await gateway.post("/auth/refresh", json={"refresh_token": user.refresh_token})
        assert resp.status_code == 200, resp.text
        rotated.update(resp.json())

    watch = await api.watch_ws(stack.gateway, job_id, user.access_token, within=90, on_message=rotate_once)
    assert watch.terminal is not None, f"no terminal event over the WebSocket: {watch.types()}"
    assert watch.events[0]["type"] == "snapshot"
    assert rotated["refresh_token"] != user.refresh_token
    assert rotated["access_token"] != user.access_token
    user = User(user.email, user.password, rotated["access_token"], rotated["refresh_token"], user.user_id)
    me = await gateway.get("/auth/me", headers=user.headers)
    assert me.status_code == 200
    assert me.json()["id"] == user.user_id

    status = await api.wait_job(gateway, job_id, user.headers, within=60)
    assert status["status"] == "completed", status
    assert status["counts"]["succeeded"] == N
    ws_items = [e for e in watch.events if e.get("type") == "llmts.generation.item_generated"]
    if watch.terminal.get("type") != "snapshot":
        # the socket followed the job live: it saw every item (redeliveries are deduplicated by event id)
        assert len({e["id"] for e in ws_items}) + _snapshot_succeeded(watch) >= N

    # result: exactly N valid items, dense indexes 0..N-1, no duplicates
    items = await api.all_items(gateway, job_id, user.headers)
    assert len(items) == N
    assert sorted(it["index"] for it in items) == list(range(N))
    items.sort(key=lambda it: it["index"])
    for it in items:
        assert not valid_quiz_item(template["schema"], it["data"]), (
            it,
            valid_quiz_item(template["schema"], it["data"]),
        )
    assert len({json.dumps(it["data"], sort_keys=True) for it in items}) == N

    # every export format, each opened by an independent reader
    exports: dict[str, str] = {}
    for fmt in api.EXPORT_FORMATS:
        r = await gateway.post("/exports", headers=user.headers, json={"job_id": job_id, "format": fmt})
        assert r.status_code == 202, (fmt, r.text)
        exports[fmt] = r.json()["export_id"]
    done = await asyncio.gather(*(api.wait_export(gateway, eid, user.headers) for eid in exports.values()))
    for fmt, info in zip(exports, done, strict=True):
        assert info["status"] == "ready", (fmt, info)
        r = await gateway.get(f"/exports/{exports[fmt]}/download", headers=user.headers)
        assert r.status_code == 200, (fmt, r.text[:300])
        assert "attachment" in r.headers.get("content-disposition", "")
        # named from the template and the job's date, titled with the template's name (issue 19)
        assert re.search(
            r'filename="quiz-questions-\d{4}-\d{2}-\d{2}-[a-z0-9]{1,8}\.' + fmt + '"',
            r.headers["content-disposition"],
        ), r.headers["content-disposition"]
        if fmt in ("pdf", "md", "html", "txt"):
            shown = read_pdf(r.content) if fmt == "pdf" else r.content.decode("utf-8")
            assert "Quiz questions" in shown, fmt
        if info.get("bytes") is not None:
            assert len(r.content) == info["bytes"], fmt
        check_export(fmt, r.content, items)

    # history
    hist = (await gateway.get("/history", headers=user.headers)).json()
    assert [j["job_id"] for j in hist["items"]] == [job_id]
    assert hist["items"][0]["counts"]["succeeded"] == N

    # a second user sees none of it
    other = await register_and_login(gateway, "journey-other")
    for path in (
        f"/templates/{tid}",
        f"/templates/{tid}/versions",
        f"/generate/{job_id}",
        f"/generate/{job_id}/result",
        *(f"/exports/{eid}" for eid in exports.values()),
        *(f"/exports/{eid}/download" for eid in exports.values()),
    ):
        r = await gateway.get(path, headers=other.headers)
        assert r.status_code == 404, (path, r.status_code, r.text[:200])
    assert (await gateway.get("/history", headers=other.headers)).json()["total"] == 0
    templates = (await gateway.get("/templates", headers=other.headers)).json()
    assert tid not in [t["id"] for t in templates["items"]]
    r = await gateway.post("/exports", headers=other.headers, json={"job_id": job_id, "format": "csv"})
    assert r.status_code == 404, r.text
    print(f"\njourney: {N} items, {len(exports)} exports in {time.monotonic() - t0:.1f}s")


def _snapshot_succeeded(watch: api.Watch) -> int:
    first = watch.events[0]
    return int(((first.get("data") or {}).get("counts") or {}).get("succeeded", 0))
