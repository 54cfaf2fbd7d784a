"""In-memory implementations of the exporter's ports (the unit tests' adapters)."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from llmts_common.contracts import Message
from llmts_exporter.domain.exports import FINAL_STATUSES, JobView
from llmts_exporter.domain.jobs import model_key
from llmts_exporter.domain.ports import ExportRecord


class FakeJobs:
    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.items: dict[tuple[str, int], Any] = {}
        self.provenance: dict[tuple[str, int], dict[str, Any] | None] = {}

    async def apply(self, job_id: str, fields: Mapping[str, Any], *, terminal: bool) -> None:
        doc = self.jobs.setdefault(job_id, {"status": "running", "terminal": False})
        doc.update(fields)

    async def add_item(
        self, job_id: str, user_id: str, index: int, data: Any, *, provenance: Mapping[str, Any] | None = None
    ) -> None:
        if (job_id, index) not in self.items:
            self.items[(job_id, index)] = copy.deepcopy(data)
            self.provenance[(job_id, index)] = dict(provenance) if provenance else None
        key = model_key(dict(provenance or {}))
        if key is not None:
            doc = self.jobs.setdefault(job_id, {"status": "running", "terminal": False})
            if key not in doc.setdefault("models", []):
                doc["models"].append(key)

    async def get(self, job_id: str) -> JobView | None:
        doc = self.jobs.get(job_id)
        return JobView.model_validate({**doc, "job_id": job_id}) if doc is not None else None

    async def count_items(self, job_id: str) -> int:
        return sum(1 for j, _ in self.items if j == job_id)

    def _indexes(self, job_id: str) -> list[int]:
        return [i for j, i in self.items if j == job_id]

    async def items_page(
        self, job_id: str, *, after_index: int, limit: int, provenance: bool = False
    ) -> list[tuple[int, Any, dict[str, Any] | None]]:
        indexes = sorted(i for i in self._indexes(job_id) if i > after_index)[:limit]
        return [
            (
                i,
                copy.deepcopy(self.items[(job_id, i)]),
                copy.deepcopy(self.provenance.get((job_id, i))) if provenance else None,
            )
            for i in indexes
        ]


class FakeExports:
    def __init__(self) -> None:
        self.records: dict[str, ExportRecord] = {}
        self.leases: dict[str, tuple[str | None, datetime | None]] = {}
        self.not_before: dict[str, datetime] = {}
        self.events: list[Message] = []

    async def create(self, record: ExportRecord) -> bool:
        if record.export_id in self.records:
            return False
        self.records[record.export_id] = record
        self.not_before[record.export_id] = record.created_at
        self.leases[record.export_id] = (None, None)
        return True

    async def get(self, export_id: str) -> ExportRecord | None:
        return self.records.get(export_id)

    async def list_for(
        self, user_id: str, *, job_id: str | None, fmt: str | None, limit: int, offset: int = 0
    ) -> tuple[list[ExportRecord], int]:
        found = [
            r
            for r in sorted(self.records.values(), key=lambda r: r.created_at, reverse=True)
            if r.user_id == user_id and job_id in (None, r.job_id) and fmt in (None, r.format)
        ]
        return found[offset : offset + limit], len(found)

    async def claim(self, *, now: datetime, lease_until: datetime, token: str) -> ExportRecord | None:
        for export_id, r in self.records.items():
            _, until = self.leases[export_id]
            due = r.status == "queued" and self.not_before[export_id] <= now
            stale = r.status == "running" and until is not None and until < now
            if due or stale:
                self.records[export_id] = replace(r, status="running")
                self.leases[export_id] = (token, lease_until)
                return self.records[export_id]
        return None

    async def begin_run(self, export_id: str, *, token: str, now: datetime) -> int | None:
        if self.leases[export_id][0] != token:
            return None
        r = self.records[export_id]
        self.records[export_id] = replace(r, attempts=r.attempts + 1, waiting=None)
        return r.attempts + 1

    async def renew(self, export_id: str, *, token: str, lease_until: datetime) -> bool:
        if self.leases[export_id][0] != token:
            return False
        self.leases[export_id] = (token, lease_until)
        return True

    async def release(self, export_id: str, *, token: str, not_before: datetime, waiting: str) -> None:
        if self.leases[export_id][0] == token:
            self.records[export_id] = replace(self.records[export_id], status="queued", waiting=waiting)
            self.not_before[export_id] = not_before
            self.leases[export_id] = (None, None)

    async def finish(
        self, export_id: str, *, token: str | None, fields: Mapping[str, Any], events: Sequence[Message]
    ) -> bool:
        r = self.records[export_id]
        if r.status in FINAL_STATUSES:
            return False
        if (token is None and r.status != "queued") or (
            token is not None and self.leases[export_id][0] != token
        ):
            return False
        known = {k: v for k, v in fields.items() if k in ExportRecord.__dataclass_fields__}
        self.records[export_id] = replace(r, **known)
        self.leases[export_id] = (None, None)
        self.events.extend(events)
        return True

    async def flush_events(self, export_id: str) -> None:
        return None

    async def expired(self, *, before: datetime, limit: int) -> list[ExportRecord]:
        return [r for r in self.records.values() if r.created_at < before][:limit]

    async def delete(self, export_id: str) -> None:
        self.records.pop(export_id, None)


class _MemUpload:
    def __init__(self, store: MemoryStore, key: str) -> None:
        self.store, self.key, self.buf = store, key, bytearray()

    async def write(self, data: bytes) -> None:
        self.buf += data

    async def commit(self) -> None:
        self.store.files[self.key] = bytes(self.buf)

    async def abort(self) -> None:
        self.buf.clear()


class MemoryStore:
    name = "memory"

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    async def begin(self, key: str, *, filename: str, content_type: str) -> _MemUpload:
        self.files.pop(key, None)
        return _MemUpload(self, key)

    async def size(self, key: str) -> int | None:
        return len(self.files[key]) if key in self.files else None

    async def read(self, key: str) -> AsyncIterator[bytes]:
        yield self.files[key]

    async def delete(self, key: str) -> None:
        self.files.pop(key, None)
