"""A REAL kill -9 of the exporter process mid-export, then a new process: the export is taken over once the
dead run's lease expires and finished with a correct file.

The exporter runs as ``python -m llmts_exporter`` with its own database, consumer group, topic prefix and a free
port. The job and the export are written straight into the exporter's collections through its own adapters
(what the consumers would have written), so the test does not depend on Kafka traffic; the processes still
connect to the local Kafka as in production. The lease is the default one: the regression was a 60 s lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from gridfs import AsyncGridFSBucket
from pypdf import PdfReader
from tests.support.names import unique, unique_db, unique_topic_prefix
from tests.support.net import free_port
from tests.support.serve import ServiceProcess

from llmts_common.mongo import create_client
from llmts_exporter.adapters.mongo import JOB_ITEMS, MongoJobProjection
from llmts_exporter.settings import ExporterSettings

from .conftest import KAFKA, MONGO_URL, SCHEMA, make_items

N_ITEMS = 15000
"""Enough for the pdf export to be still running a second after it started (the kill comes then)."""
LEASE = ExporterSettings.model_fields["export_lease_seconds"].default


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    suffix = unique()
    db = unique_db("exporter_kill")
    values = {
        **os.environ,
        "MONGO_URL": MONGO_URL,
        "MONGO_DB": db,
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "KAFKA_GROUP_ID": f"test-exporter-kill-{suffix}",
        "KAFKA_TOPIC_PREFIX": unique_topic_prefix("test-kill"),
        "SERVICE_NAME": f"exporter-kill-{suffix}",
        "EXPORTER_PORT": str(free_port()),
        "EXPORT_RECHECK_SECONDS": "0.2",
        "EXPORT_PAGE_SIZE": "200",
        "LOG_JSON": "false",
        "LOG_LEVEL": "INFO",
    }
    values.pop("EXPORT_LEASE_SECONDS", None)
    yield values
    client = create_client(MONGO_URL)
    with contextlib.suppress(Exception):
        await client.drop_database(db)
    await client.close()


@pytest.mark.timeout(300)
async def test_kill_9_mid_export_then_a_new_process_finishes_it(env: dict[str, str], tmp_path: Path) -> None:
    port = int(env["EXPORTER_PORT"])
    client = create_client(MONGO_URL)
    db = client[env["MONGO_DB"]]
    first = ServiceProcess("llmts_exporter", env, tmp_path / "exporter-1.log")
    second = ServiceProcess("llmts_exporter", env, tmp_path / "exporter-2.log")
    try:
        # the projected job: what GenerationStarted/ItemGenerated*/GenerationCompleted leave in the collections
        job_id, user_id, export_id = f"job-{uuid.uuid4().hex}", "user-kill", uuid.uuid4().hex
        items = make_items(N_ITEMS)
        jobs = MongoJobProjection(db)
        now = datetime.now(UTC)
        await jobs.apply(
            job_id,
            {
                "user_id": user_id,
                "requested": N_ITEMS,
                "model": "openai/gpt-4o-mini",
                "template_id": "tpl-1",
                "template_version": 1,
                "template_name": "Каталог: kill -9",
                "output_format": "json",
                "item_schema": SCHEMA,
                "started_at": now,
            },
            terminal=False,
        )
        await db[JOB_ITEMS].insert_many(
            [
                {
                    "_id": f"{job_id}:{i:012d}",
                    "job_id": job_id,
                    "user_id": user_id,
                    "index": i,
                    "data_json": json.dumps(data, ensure_ascii=False),
                }
                for i, data in enumerate(items)
            ]
        )
        await jobs.apply(
            job_id,
            {
                "user_id": user_id,
                "terminal": True,
                "status": "completed",
                "succeeded": N_ITEMS,
                "rejected": 0,
            },
            terminal=True,
        )

        first.start()
        await first.wait_ready(f"http://127.0.0.1:{port}")
        await db["exports"].insert_one(
            {
                "_id": export_id,
                "job_id": job_id,
                "user_id": user_id,
                "format": "pdf",
                "options": {},
                "status": "queued",
                "created_at": datetime.now(UTC),
                "updated_at": datetime.now(UTC),
                "not_before": datetime.now(UTC),
                "lease_token": None,
                "lease_until": None,
                "_outbox": [],
            }
        )
        # mid-export: a run has begun (attempts 1) and has been writing for a second
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            doc = await db["exports"].find_one({"_id": export_id})
            if doc and doc["status"] == "running" and doc.get("attempts") == 1:
                break
            assert doc is None or doc["status"] in ("queued", "running"), doc
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the export never got under way")
        await asyncio.sleep(1.0)
        first.kill9()
        t_kill = time.monotonic()
        killed_at = datetime.now(UTC)
        doc = await db["exports"].find_one({"_id": export_id})
        assert doc is not None
        assert doc["status"] == "running", "the export finished before the kill; more items"
        dead_lease_until = _utc(doc["lease_until"])
        # the lease the dead run holds is the short default one, renewed while it ran (the regression: 60 s)
        assert dead_lease_until <= killed_at + timedelta(seconds=LEASE), (dead_lease_until, killed_at)

        second.start()
        await second.wait_ready(f"http://127.0.0.1:{port}")
        while time.monotonic() - t_kill < LEASE + 60:
            doc = await db["exports"].find_one({"_id": export_id})
            assert doc is not None
            if doc["status"] in ("ready", "failed"):
                break
            await asyncio.sleep(0.2)
        print(
            f"kill -9 recovery: export ready {time.monotonic() - t_kill:.1f} s after the kill (lease {LEASE} s)"
        )
        assert doc["status"] == "ready", (doc, (tmp_path / "exporter-2.log").read_text()[-3000:])
        assert doc["items"] == N_ITEMS
        # taken over by a second run once the dead run's lease had expired (the claim requires lease_until < now)
        assert doc["attempts"] == 2
        assert _utc(doc["started_at"]) >= dead_lease_until, (doc["started_at"], dead_lease_until)

        out = io.BytesIO()
        bucket: Any = AsyncGridFSBucket(db, bucket_name="export_files")
        assert doc["file_key"] == f"{export_id}-r2"  # the run that took over wrote its own file
        await bucket.download_to_stream(doc["file_key"], out)
        raw = out.getvalue()
        assert len(raw) == doc["bytes"]
        assert hashlib.sha256(raw).hexdigest() == doc["sha256"]
        # the killed run's partial file was removed once the new run's result was recorded
        assert await db["export_files.files"].count_documents({"_id": {"$regex": f"^{export_id}"}}) == 1
        reader = PdfReader(io.BytesIO(raw))
        assert "Каталог: kill -9" in (reader.pages[0].extract_text() or "")
        last = reader.pages[-1].extract_text() or ""
        assert f"#{N_ITEMS}" in last.split()  # the card of the last item (index N_ITEMS - 1)
    finally:
        first.stop()
        second.stop()
        await client.close()
