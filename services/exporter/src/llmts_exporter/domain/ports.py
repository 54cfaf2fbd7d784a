"""The ports the handlers depend on. Real adapters live in ``adapters/``; unit tests pass in-memory fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from llmts_common.contracts import Message
from llmts_exporter.domain.exports import JobView

Clock = Callable[[], datetime]


class JobProjection(Protocol):
    """The exporter's read model of generation jobs (``jobs``) and their items (``job_items``)."""

    async def apply(self, job_id: str, fields: Mapping[str, Any], *, terminal: bool) -> None:
        """Set ``fields`` on the job (upsert); a non-terminal update never overwrites a terminal job's status."""

    async def add_item(
        self, job_id: str, user_id: str, index: int, data: Any, *, provenance: Mapping[str, Any] | None = None
    ) -> None:
        """Idempotent on (job_id, index); ``provenance`` (``domain.jobs.item_provenance``) is kept beside it and
        its model (``domain.jobs.model_key``) added to the job's ``models`` (in order of first use)."""

    async def get(self, job_id: str) -> JobView | None: ...

    async def count_items(self, job_id: str) -> int: ...

    async def items_page(
        self, job_id: str, *, after_index: int, limit: int, provenance: bool = False
    ) -> list[tuple[int, Any, dict[str, Any] | None]]:
        """``limit`` items ``(index, data, provenance)`` with index > ``after_index``, ascending by index;
        provenance is read only when asked for (else ``None``)."""


@dataclass(frozen=True)
class ExportRecord:
    export_id: str
    job_id: str
    user_id: str
    format: str
    options: dict[str, Any]
    status: str
    created_at: datetime
    updated_at: datetime
    reason: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    items: int | None = None
    filename: str | None = None
    filename_star: str | None = None
    content_type: str | None = None
    file_key: str | None = None
    store: str | None = None
    attempts: int = 0
    finished_at: datetime | None = None
    waiting: str | None = None


class ExportRepository(Protocol):
    async def create(self, record: ExportRecord) -> bool:
        """Insert a queued export; False when that export id already exists (a redelivered command)."""

    async def get(self, export_id: str) -> ExportRecord | None: ...

    async def list_for(
        self, user_id: str, *, job_id: str | None, fmt: str | None, limit: int, offset: int = 0
    ) -> tuple[list[ExportRecord], int]:
        """One page of the user's exports, newest first, and how many match the filters."""
        ...

    async def claim(self, *, now: datetime, lease_until: datetime, token: str) -> ExportRecord | None:
        """Atomically take one export that is queued and due, or running with an expired lease."""

    async def begin_run(self, export_id: str, *, token: str, now: datetime) -> int | None:
        """Count one real run of a claimed export; its attempt number, or None when the claim was lost."""

    async def renew(self, export_id: str, *, token: str, lease_until: datetime) -> bool: ...

    async def release(self, export_id: str, *, token: str, not_before: datetime, waiting: str) -> None:
        """Put a claimed export back to ``queued`` until ``not_before`` (its job is not ready)."""

    async def finish(
        self,
        export_id: str,
        *,
        token: str | None,
        fields: Mapping[str, Any],
        events: Sequence[Message],
    ) -> bool:
        """Move to ready/failed with ``fields`` and the events in the same single-document write (outbox).

        ``token`` None finishes an unclaimed (queued) export. False if the export moved on meanwhile.
        """

    async def expired(self, *, before: datetime, limit: int) -> list[ExportRecord]: ...

    async def delete(self, export_id: str) -> None: ...

    async def flush_events(self, export_id: str) -> None:
        """Publish the export's pending events now (the relay catches anything this misses)."""


class Upload(Protocol):
    async def write(self, data: bytes) -> None: ...

    async def commit(self) -> None: ...

    async def abort(self) -> None: ...


class FileStore(Protocol):
    name: str

    async def begin(self, key: str, *, filename: str, content_type: str) -> Upload:
        """Start writing ``key``, replacing whatever an earlier, interrupted attempt left there."""

    async def size(self, key: str) -> int | None:
        """Byte size of a stored file, None when it does not exist."""

    def read(self, key: str) -> AsyncIterator[bytes]:
        """Stream a stored file in chunks."""

    async def delete(self, key: str) -> None:
        """Remove the file; no error when it is already gone."""
