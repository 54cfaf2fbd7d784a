"""Exports through the gateway: the real exporter (uvicorn, in-process, free port) behind the real gateway, on the
real local Kafka and MongoDB-wire server, with tokens signed by a test Ed25519 key both services trust."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import openpyxl
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from lxml import etree
from tests.support.serve import serve
from tests.support.tokens import Signer, make_signer

from llmts_api.exports import EXPORT_FORMATS
from llmts_common.contracts import (
    GenerationCompleted,
    GenerationRequested,
    GenerationStarted,
    ItemGenerated,
    Message,
    ModelRef,
    Prompts,
    TemplateSnapshot,
    Usage,
    topics,
)
from llmts_common.kafka import EventPublisher, create_broker
from llmts_common.kafka_security import faststream_security, kafka_client_options
from llmts_common.mongo import create_client
from llmts_common.outbox import Outbox
from llmts_exporter.bootstrap import bootstrap as bootstrap_exporter
from llmts_exporter.domain.links import DownloadLinks
from llmts_exporter.settings import ExporterSettings
from llmts_exporter.writers import FORMATS
from llmts_gateway.bootstrap import bootstrap as bootstrap_gateway
from llmts_gateway.settings import GatewaySettings

MONGO_URL = os.environ.get("MONGO_URL", "mongodb://127.0.0.1:27017")
LINK_KEY = "gateway-test-link-key-0123456789"
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def _uid() -> str:
    return uuid.uuid4().hex[:12]


async def _start_group_at_end(group: str, topic_names: list[str]) -> None:
    producer = AIOKafkaProducer(**kafka_client_options())
    await producer.start()
    try:
        tps = [TopicPartition(t, p) for t in topic_names for p in sorted(await producer.partitions_for(t))]
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(**kafka_client_options(), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.commit(dict((await consumer.end_offsets(tps)).items()))
    finally:
        await consumer.stop()


@dataclass
class Gateway:
    http: httpx.AsyncClient
    publisher: EventPublisher
    signer: Signer
    db: Any
    exporter_url: str

    def auth(self, sub: str) -> dict[str, str]:
        return self.signer.headers(sub, ttl=600)

    async def publish(self, *messages: Message) -> None:
        for m in messages:
            await self.publisher.publish(m)


async def _until(check: Callable[[], Awaitable[Any]], within: float = 60.0) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
async def gateway() -> AsyncIterator[Gateway]:
    suffix = uuid.uuid4().hex[:10]
    signer = make_signer(f"test-{suffix}")
    exporter_settings = ExporterSettings(
        mongo_url=MONGO_URL,
        kafka_bootstrap_servers=KAFKA,
        mongo_db=f"llmts_test_gwexp_{suffix}",
        kafka_group_id=f"test-gw-exporter-{suffix}",
        export_wait_for_job_seconds=60,
        export_recheck_seconds=0.2,
        export_page_size=7,
        log_json=False,
        log_level="WARNING",
        export_link_key=LINK_KEY,
        public_base_url="http://gateway",
    )
    await _start_group_at_end(
        exporter_settings.kafka_group_id, [topics.EXPORT_COMMANDS, topics.GENERATION_EVENTS]
    )
    exporter_app, _ = bootstrap_exporter(exporter_settings, verifier=signer.verifier())
    gw_settings = GatewaySettings(
        mongo_url=MONGO_URL,
        kafka_bootstrap_servers=KAFKA,
        exporter_url="",
        mongo_db=f"llmts_test_gw_{suffix}",
        kafka_group_id=f"test-gw-{suffix}",
        log_json=False,
        log_level="WARNING",
    )
    broker = create_broker(KAFKA, client_id=f"test-generator-{suffix}", security=faststream_security())
    try:
        async with serve(exporter_app) as exporter_url:
            gw_settings = gw_settings.model_copy(update={"exporter_url": exporter_url})
            gw_app, _ctx, gw_runtime = bootstrap_gateway(gw_settings, verifier=signer.verifier())
            await broker.start()
            async with (
                gw_app.router.lifespan_context(gw_app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=gw_app), base_url="http://gateway", timeout=30
                ) as client,
            ):
                yield Gateway(
                    client,
                    EventPublisher(broker, source="test-generator"),
                    signer,
                    gw_runtime.db,
                    exporter_url,
                )
    finally:
        await broker.stop()
        cleanup = create_client(MONGO_URL)  # only the databases this module created
        for name in (exporter_settings.mongo_db, gw_settings.mongo_db):
            with contextlib.suppress(Exception):
                await cleanup.drop_database(name)
        await cleanup.close()


def _items(n: int) -> list[dict[str, Any]]:
    return [
        {
            "название": f"Книга №{i}",
            "автор": {"имя": "Лев", "фамилия": "Толстой"},
            "цена": 100 + i,
            "заметка": ["=1+1", "<script>x()</script>", "]]>", "обычный"][i % 4],
        }
        for i in range(n)
    ]


def _job_events(job_id: str, user_id: str, items: list[dict[str, Any]]) -> list[Message]:
    n = len(items)
    usage = Usage(prompt_tokens=5, completion_tokens=7, cost_usd=0.001)
    return [
        GenerationStarted(
            job_id=job_id,
            user_id=user_id,
            requested=n,
            model=ModelRef(provider="ollama", id="qwen2.5:7b"),
            template_id="tpl-books",
            template_version=1,
            started_at=datetime.now(UTC),
            template_name="Библиотека",
            output_format="json",
        ),
        *[
            ItemGenerated(
                job_id=job_id, user_id=user_id, index=i, data=d, attempts=1, usage=usage, content_hash=str(i)
            )
            for i, d in enumerate(items)
        ],
        GenerationCompleted(
            job_id=job_id,
            user_id=user_id,
            status="completed",
            requested=n,
            succeeded=n,
            rejected=0,
            attempts=n,
            usage=usage,
            duration_seconds=2.0,
        ),
    ]


@pytest.fixture(scope="module")
async def job(gateway: Gateway) -> tuple[str, str, list[dict[str, Any]]]:
    job_id, user_id = f"job-{_uid()}", f"user-{_uid()}"
    items = _items(16)
    await gateway.publish(*_job_events(job_id, user_id, items))
    headers = gateway.auth(user_id)

    async def projected() -> bool:  # the exporter learns about jobs from Kafka: wait until it has
        async with httpx.AsyncClient(base_url=gateway.exporter_url) as direct:
            r = await direct.get(f"/jobs/{job_id}", headers=headers)
            return r.status_code == 200 and r.json().get("status") == "completed"

    await _until(projected)

    resp = await gateway.http.post("/exports", json={"job_id": job_id, "format": "nope"}, headers=headers)
    assert resp.status_code == 422  # the format is validated before anything else
    return job_id, user_id, items


async def _ready(gateway: Gateway, export_id: str, headers: dict[str, str]) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        resp = await gateway.http.get(f"/exports/{export_id}", headers=headers)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        assert body["status"] != "failed", body
        return body if body["status"] == "ready" else None

    result: dict[str, Any] = await _until(check)
    return result


def test_gateway_formats_match_the_exporters_writers() -> None:
    assert set(EXPORT_FORMATS) == set(FORMATS)


@pytest.mark.parametrize("fmt", ["json", "csv", "xlsx", "xml", "pdf"])
async def test_post_poll_download_through_the_gateway(
    gateway: Gateway, job: tuple[str, str, list[dict[str, Any]]], fmt: str
) -> None:
    job_id, user_id, items = job
    headers = gateway.auth(user_id)
    resp = await gateway.http.post("/exports", json={"job_id": job_id, "format": fmt}, headers=headers)
    assert resp.status_code == 202, resp.text
    accepted = resp.json()
    export_id = accepted["export_id"]
    assert accepted["status"] == "queued"
    assert resp.headers["location"] == accepted["links"]["self"] == f"/exports/{export_id}"

    status = await _ready(gateway, export_id, headers)
    assert status["items"] == len(items)
    download = await gateway.http.get(status["links"]["download"], headers=headers)
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == status["sha256"]
    assert len(download.content) == status["bytes"]
    assert download.headers["content-type"].split(";")[0] == FORMATS[fmt].content_type.split(";")[0]
    assert "filename*=UTF-8''%D0%B1%D0%B8%D0%B1" in download.headers["content-disposition"]  # "биб…"
    body = download.content
    if fmt == "json":
        assert json.loads(body) == items
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
        assert [r["название"] for r in rows] == [i["название"] for i in items]
        assert rows[0]["автор.фамилия"] == "Толстой"
        assert not any(r["заметка"].startswith("=") for r in rows)
    elif fmt == "xlsx":
        ws = openpyxl.load_workbook(io.BytesIO(body), read_only=True).worksheets[0]
        rows = list(ws.iter_rows(values_only=True))
        col = list(rows[0]).index("название")
        assert [r[col] for r in rows[1:]] == [i["название"] for i in items]
    elif fmt == "xml":
        root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
        assert len(root.findall(".//item")) == len(items)
    else:
        assert body.startswith(b"%PDF")


async def test_a_signed_link_downloads_through_the_gateway_without_a_token(
    gateway: Gateway, job: tuple[str, str, list[dict[str, Any]]]
) -> None:
    job_id, user_id, _items = job
    headers = gateway.auth(user_id)
    resp = await gateway.http.post("/exports", json={"job_id": job_id, "format": "csv"}, headers=headers)
    export_id = resp.json()["export_id"]
    status = await _ready(gateway, export_id, headers)
    links = DownloadLinks(key=LINK_KEY.encode(), base_url="http://gateway", lifetime=timedelta(minutes=5))
    url, _expires_at = links.sign(export_id, datetime.now(UTC))  # what ExportReady carries

    download = await gateway.http.get(url)  # no Authorization header
    assert download.status_code == 200, download.text
    assert hashlib.sha256(download.content).hexdigest() == status["sha256"]
    assert download.headers["content-disposition"].startswith("attachment;")

    tampered = await gateway.http.get(url.replace(export_id, "x" + export_id[1:]))
    assert tampered.status_code == 403
    assert tampered.json()["error"]["code"] == "link_invalid"
    expired_url, _ = links.sign(export_id, datetime.now(UTC) - timedelta(minutes=6))
    expired = await gateway.http.get(expired_url)
    assert expired.status_code == 403
    assert expired.json()["error"]["code"] == "link_expired"


async def test_convenience_endpoint_requests_then_returns_the_file(
    gateway: Gateway, job: tuple[str, str, list[dict[str, Any]]]
) -> None:
    job_id, user_id, items = job
    headers = gateway.auth(user_id)
    first = await gateway.http.get(f"/generate/{job_id}/export", params={"format": "jsonl"}, headers=headers)
    assert first.status_code == 202, first.text
    location = first.headers["location"]
    again = await gateway.http.get(f"/generate/{job_id}/export", params={"format": "jsonl"}, headers=headers)
    if again.status_code == 202:  # still being built: the same export, not a second one
        assert again.headers["location"] == location
    await _ready(gateway, location.rsplit("/", 1)[1], headers)

    file = await gateway.http.get(f"/generate/{job_id}/export", params={"format": "jsonl"}, headers=headers)
    assert file.status_code == 200
    assert [json.loads(line) for line in file.text.splitlines()] == items
    assert file.headers["content-disposition"].startswith("attachment; filename=")

    default = await gateway.http.get(f"/generate/{job_id}/export", headers=headers)  # json by default
    if default.status_code == 202:
        await _ready(gateway, default.headers["location"].rsplit("/", 1)[1], headers)
        default = await gateway.http.get(f"/generate/{job_id}/export", headers=headers)
    assert default.status_code == 200
    assert default.headers["content-type"] == "application/json"
    assert default.json() == items
    listed = (await gateway.http.get("/exports", params={"job_id": job_id}, headers=headers)).json()
    assert {"json", "jsonl"} <= {e["format"] for e in listed["items"]}


async def test_another_user_gets_404_everywhere(
    gateway: Gateway, job: tuple[str, str, list[dict[str, Any]]]
) -> None:
    job_id, user_id, _ = job
    owner = gateway.auth(user_id)
    resp = await gateway.http.post("/exports", json={"job_id": job_id, "format": "txt"}, headers=owner)
    export_id = resp.json()["export_id"]
    await _ready(gateway, export_id, owner)

    other = gateway.auth(f"user-{_uid()}")
    post = await gateway.http.post("/exports", json={"job_id": job_id, "format": "txt"}, headers=other)
    assert post.status_code == 404
    assert post.json()["error"]["code"] == "job_not_found"
    for path in (f"/exports/{export_id}", f"/exports/{export_id}/download", f"/generate/{job_id}/export"):
        resp = await gateway.http.get(path, headers=other)
        assert resp.status_code == 404, (path, resp.text)
    assert (await gateway.http.get("/exports", params={"job_id": job_id}, headers=other)).json()[
        "items"
    ] == []
    assert (await gateway.http.get(f"/exports/{export_id}")).status_code == 401


async def test_a_job_accepted_moments_ago_can_be_exported_and_the_export_waits(gateway: Gateway) -> None:
    """The gateway accepted the job (its command is in the outbox) but the exporter has not projected it yet."""
    job_id, user_id = f"job-{_uid()}", f"user-{_uid()}"
    command = GenerationRequested(
        job_id=job_id,
        user_id=user_id,
        template=TemplateSnapshot(
            id="tpl-books", version=1, name="Библиотека", owner_id=user_id, prompts=Prompts(user="x")
        ),
        model=ModelRef(provider="ollama", id="qwen2.5:7b"),
        count=3,
        requested_at=datetime.now(UTC),
    )
    envelope = command.to_envelope(source="gateway")
    # as POST /generate stores it; marked published so the relay never sends this test command to Kafka
    await gateway.db[Outbox.COLLECTION].insert_one(
        {
            "_id": envelope.id,
            "topic": command.TOPIC,
            "envelope": envelope.model_dump(mode="json"),
            "published": True,
            "created_at": datetime.now(UTC),
        }
    )
    headers = gateway.auth(user_id)
    resp = await gateway.http.post("/exports", json={"job_id": job_id, "format": "md"}, headers=headers)
    assert resp.status_code == 202, resp.text
    export_id = resp.json()["export_id"]
    status = (await gateway.http.get(f"/exports/{export_id}", headers=headers)).json()
    assert status["status"] in ("queued", "running")

    items = _items(3)
    await gateway.publish(*_job_events(job_id, user_id, items))
    status = await _ready(gateway, export_id, headers)
    body = (await gateway.http.get(status["links"]["download"], headers=headers)).text
    assert "Книга №2" in body

    stranger = gateway.auth(f"user-{_uid()}")
    assert (
        await gateway.http.post("/exports", json={"job_id": f"job-{_uid()}"}, headers=stranger)
    ).status_code == 404


async def test_invalid_requests_answer_422(
    gateway: Gateway, job: tuple[str, str, list[dict[str, Any]]]
) -> None:
    job_id, user_id, _ = job
    headers = gateway.auth(user_id)
    for body in (
        {"job_id": job_id, "format": "docx"},
        {"job_id": job_id, "format": "csv", "options": {"zip": True}},
        {"job_id": job_id, "format": "csv", "options": {"csv_delimiter": ";;"}},
    ):
        resp = await gateway.http.post("/exports", json=body, headers=headers)
        assert resp.status_code == 422, body
        assert resp.json()["error"]["code"] == "validation_error"
    bad = await gateway.http.get(f"/generate/{job_id}/export", params={"format": "docx"}, headers=headers)
    assert bad.status_code == 422
