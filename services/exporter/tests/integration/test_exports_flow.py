"""The exporter end to end on the real local Kafka and MongoDB-wire server.

Generation events for synthetic jobs (Cyrillic text, injection payloads) go to ``generation.events``; export
commands go to ``export.commands``; the exporter answers on ``export.events`` and serves the files over HTTP.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import uuid
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote

import openpyxl
import pyarrow.parquet as pq
import pytest
from lxml import etree
from pypdf import PdfReader

from llmts_common.contracts import ExportRequested, GenerationStarted, topics
from llmts_exporter.domain.ports import ExportRecord
from llmts_exporter.writers import FORMATS

from .conftest import Stack, job_completed, job_items, job_started, make_items

N_ITEMS = 25  # page size is 10 in these tests: three pages


def _uid() -> str:
    return uuid.uuid4().hex[:12]


async def _request(stack: Stack, job_id: str, user_id: str, fmt: str, **options: Any) -> str:
    export_id = _uid()
    await stack.publish(
        ExportRequested(export_id=export_id, job_id=job_id, user_id=user_id, format=fmt, options=options)
    )
    return export_id


@pytest.fixture(scope="module")
async def finished_job(stack: Stack) -> tuple[str, str, list[dict[str, Any]]]:
    job_id, user_id = f"job-{_uid()}", f"user-{_uid()}"
    items = make_items(N_ITEMS)
    await stack.publish(
        job_started(job_id, user_id, N_ITEMS),
        *job_items(job_id, user_id, items),
        job_completed(job_id, user_id, N_ITEMS),
    )
    return job_id, user_id, items


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _check_parsed(fmt: str, body: bytes, items: list[dict[str, Any]]) -> None:
    names = [it["name"] for it in items]
    if fmt == "json":
        assert json.loads(body) == items
    elif fmt == "jsonl":
        assert [json.loads(line) for line in body.decode().splitlines()] == items
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
        assert [r["name"] for r in rows] == names
        assert "details.color" in rows[0]
        assert rows[1]["details.color"] == "красный"
        for r in rows:
            for cell in r.values():
                assert not cell.startswith(("=", "+", "-", "@")), cell
    elif fmt == "xlsx":
        wb = openpyxl.load_workbook(io.BytesIO(body), read_only=True)
        ws = wb.worksheets[0]
        rows = list(ws.iter_rows(values_only=True))
        header = list(rows[0])
        assert "name" in header
        col = header.index("name")
        assert [r[col] for r in rows[1:]] == names
        for r in rows[1:]:
            for cell in r:
                assert not (isinstance(cell, str) and cell.startswith(("=", "+", "@"))), cell
        assert len(wb.worksheets) >= 2
    elif fmt == "xml":
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        root = etree.fromstring(body, parser)
        found = root.findall(".//item")
        assert len(found) == len(items)
        assert names[0] in etree.tostring(found[0], encoding="unicode")
        assert not root.findall(".//evil")  # "]]><evil/>" stayed text
    elif fmt == "html":
        parser = _Tags()
        parser.feed(body.decode())
        assert "script" not in parser.tags
        assert any("<script>" in t for t in parser.text)
        assert any(names[0] in t for t in parser.text)
    elif fmt == "pdf":
        text = "".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(body)).pages)
        assert "Товар" in text
    elif fmt == "parquet":
        table = pq.read_table(io.BytesIO(body))
        assert table.num_rows == len(items)
        assert table.column("name").to_pylist() == names
    else:  # md, txt
        text = body.decode()
        assert names[0] in text
        assert names[-1] in text


@pytest.mark.parametrize("fmt", sorted(FORMATS))
async def test_every_format_is_built_published_and_downloadable(
    stack: Stack, finished_job: tuple[str, str, list[dict[str, Any]]], fmt: str
) -> None:
    job_id, user_id, items = finished_job
    export_id = await _request(stack, job_id, user_id, fmt)

    event = await stack.events.wait_for(export_id)
    assert event.type == "llmts.export.ready", event.data
    assert event.data["items"] == N_ITEMS
    assert event.data["download_path"] == f"/exports/{export_id}/download"

    headers = stack.signer.headers(user_id)
    status = (await stack.http.get(f"/exports/{export_id}", headers=headers)).json()
    assert status["status"] == "ready"
    assert status["links"]["download"] == f"/exports/{export_id}/download"

    resp = await stack.http.get(f"/exports/{export_id}/download", headers=headers)
    assert resp.status_code == 200
    body = resp.content
    assert len(body) == event.data["bytes"]
    assert hashlib.sha256(body).hexdigest() == event.data["sha256"] == resp.headers["x-checksum-sha256"]
    assert resp.headers["content-type"].split(";")[0] == FORMATS[fmt].content_type.split(";")[0]
    disposition = resp.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="')
    ascii_name = disposition.split('filename="')[1].split('"')[0]
    assert ascii_name.isascii()
    assert "/" not in ascii_name
    assert ascii_name.endswith(f".{FORMATS[fmt].extension}")
    star = disposition.split("filename*=")[1]
    assert star.startswith("UTF-8''")
    assert unquote(star[len("UTF-8''") :]).startswith("каталог-товаров-тест-1-")
    _check_parsed(fmt, body, items)


async def test_json_envelope_option_reaches_the_writer(
    stack: Stack, finished_job: tuple[str, str, list[dict[str, Any]]]
) -> None:
    job_id, user_id, items = finished_job
    export_id = await _request(stack, job_id, user_id, "json", envelope=True)
    assert (await stack.events.wait_for(export_id)).type == "llmts.export.ready"
    body = (
        await stack.http.get(f"/exports/{export_id}/download", headers=stack.signer.headers(user_id))
    ).json()
    assert body["items"] == items
    assert body["meta"]["template_name"] == "Каталог товаров: тест/№1"
    assert body["meta"]["succeeded"] == N_ITEMS


async def test_another_user_gets_404_on_status_download_and_list(
    stack: Stack, finished_job: tuple[str, str, list[dict[str, Any]]]
) -> None:
    job_id, user_id, _ = finished_job
    export_id = await _request(stack, job_id, user_id, "csv")
    await stack.events.wait_for(export_id)
    other = stack.signer.headers(f"user-{_uid()}")
    for path in (f"/exports/{export_id}", f"/exports/{export_id}/download", f"/jobs/{job_id}"):
        resp = await stack.http.get(path, headers=other)
        assert resp.status_code == 404, path
        assert resp.json()["error"]["code"] in ("export_not_found", "job_not_found")
    listed = (await stack.http.get("/exports", params={"job_id": job_id}, headers=other)).json()
    assert listed["items"] == []
    mine = (
        await stack.http.get("/exports", params={"job_id": job_id}, headers=stack.signer.headers(user_id))
    ).json()
    assert export_id in {e["export_id"] for e in mine["items"]}
    assert (await stack.http.get(f"/exports/{export_id}")).status_code == 401


async def test_an_export_of_another_users_job_fails_as_not_found(
    stack: Stack, finished_job: tuple[str, str, list[dict[str, Any]]]
) -> None:
    job_id, _, _ = finished_job
    intruder = f"user-{_uid()}"
    export_id = await _request(stack, job_id, intruder, "json")
    event = await stack.events.wait_for(export_id)
    assert event.type == "llmts.export.failed"
    assert event.data["reason"] == f"job {job_id} not found"


async def test_export_requested_before_the_job_ends_waits_then_completes(stack: Stack) -> None:
    job_id, user_id = f"job-{_uid()}", f"user-{_uid()}"
    items = make_items(12)
    export_id = await _request(stack, job_id, user_id, "csv")  # the job is not even known yet
    headers = stack.signer.headers(user_id)

    async def waiting() -> Any:
        resp = await stack.http.get(f"/exports/{export_id}", headers=headers)
        return resp.status_code == 200 and resp.json()["waiting"] and resp.json()

    status = await stack.poll(waiting)
    assert status["status"] in ("queued", "running")
    await stack.publish(job_started(job_id, user_id, 12), *job_items(job_id, user_id, items[:5]))
    status = await stack.poll(waiting)
    assert stack.events.of(export_id) == []
    await stack.publish(*job_items(job_id, user_id, items[5:], start=5), job_completed(job_id, user_id, 12))

    event = await stack.events.wait_for(export_id)
    assert event.type == "llmts.export.ready", event.data
    assert event.data["items"] == 12
    body = (await stack.http.get(f"/exports/{export_id}/download", headers=headers)).content
    assert [r["name"] for r in csv.DictReader(io.StringIO(body.decode("utf-8-sig")))] == [
        i["name"] for i in items
    ]


async def test_export_of_a_job_that_never_ends_fails_with_a_reason(stack: Stack) -> None:
    job_id, user_id = f"job-{_uid()}", f"user-{_uid()}"
    await stack.publish(job_started(job_id, user_id, 5), *job_items(job_id, user_id, make_items(2)))
    export_id = await _request(stack, job_id, user_id, "json")
    headers = stack.signer.headers(user_id)

    async def waiting() -> Any:
        resp = await stack.http.get(f"/exports/{export_id}", headers=headers)
        return resp.status_code == 200 and resp.json()["waiting"] == "waiting for the job to finish"

    await stack.poll(waiting)
    stack.clock.shift += timedelta(seconds=stack.settings.export_wait_for_job_seconds + 1)
    try:
        stack.exporter.worker.wake.set()
        event = await stack.events.wait_for(export_id)
    finally:
        stack.clock.shift -= timedelta(seconds=stack.settings.export_wait_for_job_seconds + 1)
    assert event.type == "llmts.export.failed"
    assert "did not finish in time" in event.data["reason"]
    status = (await stack.http.get(f"/exports/{export_id}", headers=headers)).json()
    assert status["status"] == "failed"
    assert status["reason"] == event.data["reason"]
    download = await stack.http.get(f"/exports/{export_id}/download", headers=headers)
    assert download.status_code == 409
    assert download.json()["error"]["code"] == "export_not_ready"


@pytest.mark.parametrize(
    ("fmt", "options", "why"),
    [
        ("docx", {}, "unknown export format 'docx'"),
        ("csv", {"csv_delimiter": "\n"}, "invalid export options"),
        ("json", {"zip": True}, "unknown export options: zip"),
    ],
)
async def test_a_request_that_cannot_be_served_fails_and_says_why(
    stack: Stack,
    finished_job: tuple[str, str, list[dict[str, Any]]],
    fmt: str,
    options: dict[str, Any],
    why: str,
) -> None:
    job_id, user_id, _ = finished_job
    export_id = await _request(stack, job_id, user_id, fmt, **options)
    event = await stack.events.wait_for(export_id)
    assert event.type == "llmts.export.failed"
    assert why in event.data["reason"]
    status = (await stack.http.get(f"/exports/{export_id}", headers=stack.signer.headers(user_id))).json()
    assert status["status"] == "failed"
    assert why in status["reason"]


async def test_duplicate_export_requests_build_one_file(
    stack: Stack, finished_job: tuple[str, str, list[dict[str, Any]]]
) -> None:
    job_id, user_id, _ = finished_job
    export_id = _uid()
    command = ExportRequested(export_id=export_id, job_id=job_id, user_id=user_id, format="xlsx")
    first = await stack.publisher.publish(command)
    await stack.publisher.publish(command, message_id=first.id)  # a redelivery of the same message
    second = await stack.publisher.publish(command)  # the same command sent again (a new envelope)
    await stack.events.wait_for(export_id)
    db = stack.exporter.runtime.db
    consumer = f"{stack.settings.kafka_group_id}:{topics.EXPORT_COMMANDS}"

    async def all_consumed() -> bool:
        ids = [f"{consumer}:{first.id}", f"{consumer}:{second.id}"]
        return await db["processed_messages"].count_documents({"_id": {"$in": ids}}) == 2

    await stack.poll(all_consumed)
    await asyncio.sleep(1.5)  # room for a wrongly produced second event to show up
    assert len(stack.events.of(export_id)) == 1
    assert await db["exports"].count_documents({"_id": export_id}) == 1
    doc = await db["exports"].find_one({"_id": export_id})
    assert doc is not None
    assert doc["file_key"] == f"{export_id}-r1"  # one run built it
    assert await db["export_files.files"].count_documents({"_id": {"$regex": f"^{export_id}"}}) == 1


async def test_a_crashed_export_is_rebuilt_after_its_lease_expires(
    stack: Stack, finished_job: tuple[str, str, list[dict[str, Any]]]
) -> None:
    """What a kill -9 mid-export leaves behind (a running export with a lease, a half-written file) is finished."""
    job_id, user_id, items = finished_job
    exporter = stack.exporter
    export_id = _uid()
    now = stack.clock()
    await exporter.exports.create(
        ExportRecord(
            export_id=export_id,
            job_id=job_id,
            user_id=user_id,
            format="json",
            options={},
            status="queued",
            created_at=now + timedelta(days=1),
            updated_at=now,
        )
    )
    # a dead worker claimed it, started a run and wrote part of the file
    db = exporter.runtime.db
    await db["exports"].update_one(
        {"_id": export_id},
        {
            "$set": {
                "status": "running",
                "lease_token": "dead-worker",
                "lease_until": now + timedelta(seconds=3),
                "attempts": 1,
                "not_before": now,
            }
        },
    )
    upload = await exporter.store.begin(export_id, filename="x.json", content_type="application/json")
    await upload.write(b'[{"partial": ')
    event = await stack.events.wait_for(export_id, within=60)
    assert event.type == "llmts.export.ready"
    body = (
        await stack.http.get(f"/exports/{export_id}/download", headers=stack.signer.headers(user_id))
    ).content
    assert json.loads(body) == items
    doc = await db["exports"].find_one({"_id": export_id})
    assert doc is not None
    assert doc["attempts"] == 2


async def test_ttl_cleanup_removes_old_exports_and_their_files(
    stack: Stack, finished_job: tuple[str, str, list[dict[str, Any]]]
) -> None:
    job_id, user_id, _ = finished_job
    export_id = await _request(stack, job_id, user_id, "txt")
    await stack.events.wait_for(export_id)
    headers = stack.signer.headers(user_id)
    assert (await stack.http.get(f"/exports/{export_id}/download", headers=headers)).status_code == 200
    db = stack.exporter.runtime.db
    await stack.exporter.cleanup_once()  # nothing is old yet
    assert await db["exports"].count_documents({"_id": export_id}) == 1

    stack.clock.shift += timedelta(days=stack.settings.export_ttl_days, hours=1)
    try:
        removed = await stack.exporter.cleanup_once()
    finally:
        stack.clock.shift -= timedelta(days=stack.settings.export_ttl_days, hours=1)
    assert removed >= 1
    assert await db["exports"].count_documents({"_id": export_id}) == 0
    assert await db["export_files.files"].count_documents({"_id": {"$regex": f"^{export_id}"}}) == 0
    assert await db["export_files.chunks"].count_documents({"files_id": {"$regex": f"^{export_id}"}}) == 0
    assert (await stack.http.get(f"/exports/{export_id}", headers=headers)).status_code == 404


async def test_text_template_items_export(stack: Stack) -> None:
    job_id, user_id = f"job-{_uid()}", f"user-{_uid()}"
    texts = ["Первый абзац текста.", "=1+2 не формула", "<b>не жирный</b>"]
    started = GenerationStarted(
        **{**job_started(job_id, user_id, 3).model_dump(), "output_format": "text", "item_schema": None}
    )
    await stack.publish(started, *job_items(job_id, user_id, texts), job_completed(job_id, user_id, 3))
    export_id = await _request(stack, job_id, user_id, "json")
    event = await stack.events.wait_for(export_id)
    assert event.type == "llmts.export.ready", event.data
    body = (
        await stack.http.get(f"/exports/{export_id}/download", headers=stack.signer.headers(user_id))
    ).json()
    assert body == texts
