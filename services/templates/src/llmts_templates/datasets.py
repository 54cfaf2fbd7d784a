"""Seed dataset handlers (plain async functions): upload, list, get, rows, delete.

An upload is streamed to a temporary file (never held in memory; refused with 413 past ``max_bytes``), then read
chunk by chunk in a worker thread (parsing must not hold the event loop) and stored chunk by chunk. A bad file answers
422 naming the line; nothing of it is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmts_api.datasets import UPLOAD_MEDIA_TYPES, DatasetFormat
from llmts_common.errors import AppError, NotFound, PayloadTooLarge, Unprocessable
from llmts_common.mongo import utcnow
from llmts_common.times import iso_z
from llmts_templates.adapters.dataset_files import read_rows
from llmts_templates.adapters.datasets_mongo import MongoDatasetRepository
from llmts_templates.domain.datasets import ColumnTypes, DatasetError, DatasetLimits

SAMPLE_ROWS = 10


class TooManyDatasets(AppError):
    status_code = 409
    code = "dataset_limit_reached"


@dataclass
class DatasetDeps:
    repo: MongoDatasetRepository
    limits: DatasetLimits
    spool_dir: str | None = None


def public(doc: dict[str, Any], sample: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out = {
        "id": doc["_id"],
        "name": doc["name"],
        "format": doc["format"],
        "rows": doc["rows"],
        "columns": doc["columns"],
        "bytes": doc["bytes"],
        "created_at": iso_z(doc["created_at"]),
    }
    if sample is not None:
        out["sample"] = sample
    return out


def pick_format(explicit: DatasetFormat | None, content_type: str | None, name: str) -> DatasetFormat:
    if explicit:
        return explicit
    media = (content_type or "").split(";")[0].strip().lower()
    if media in UPLOAD_MEDIA_TYPES:
        return UPLOAD_MEDIA_TYPES[media]
    suffix = Path(name).suffix.lower().lstrip(".")
    by_suffix: dict[str, DatasetFormat] = {
        "csv": "csv",
        "jsonl": "jsonl",
        "ndjson": "jsonl",
        "parquet": "parquet",
    }
    if suffix in by_suffix:
        return by_suffix[suffix]
    raise Unprocessable(
        "say which format the file is: ?format=csv|jsonl|parquet, a Content-Type such as text/csv, or a name "
        "ending in .csv/.jsonl/.parquet",
        code="invalid_dataset",
        details={"line": None, "format": None, "content_type": media or None},
    )


async def _spool(body: AsyncIterator[bytes], limit: int, directory: str | None) -> tuple[Path, int]:
    fd, name = tempfile.mkstemp(prefix="llmts-dataset-", dir=directory)
    path, size = Path(name), 0
    try:
        with os.fdopen(fd, "wb") as fh:
            async for chunk in body:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(
                        f"the file is larger than {limit} bytes", details={"max_bytes": limit}
                    )
                fh.write(chunk)
    except BaseException:
        _discard(path)
        raise
    return path, size


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


async def _store(deps: DatasetDeps, dataset_id: str, chunks: Iterator[list[dict[str, Any]]]) -> int:
    """Chunks parsed in a worker thread one at a time, each stored before the next is read."""
    first = 0
    done = object()
    while True:
        chunk = await asyncio.to_thread(next, chunks, done)
        if chunk is done:
            return first
        assert isinstance(chunk, list)
        await deps.repo.add_chunk(dataset_id, first, chunk)
        first += len(chunk)


async def upload(
    deps: DatasetDeps,
    owner_id: str,
    name: str,
    fmt: DatasetFormat,
    body: AsyncIterator[bytes],
) -> dict[str, Any]:
    if await deps.repo.count_for(owner_id) >= deps.limits.max_datasets_per_user:
        raise TooManyDatasets(
            f"you have {deps.limits.max_datasets_per_user} datasets, the most one user may keep: delete one first",
            details={"max_datasets": deps.limits.max_datasets_per_user},
        )
    path, size = await _spool(body, deps.limits.max_bytes, deps.spool_dir)
    dataset_id = uuid.uuid4().hex
    meta = {"_id": dataset_id, "owner_id": owner_id, "name": name, "format": fmt, "bytes": size,
            "created_at": utcnow()}  # fmt: skip
    types = ColumnTypes(text=fmt == "csv", max_columns=deps.limits.max_columns)
    try:
        await deps.repo.begin(meta)
        rows = await _store(deps, dataset_id, read_rows(path, fmt, deps.limits, types))
        if rows == 0:
            raise DatasetError("the file has no rows")
        fields = {"rows": rows, "columns": types.columns()}
        await deps.repo.finish(dataset_id, fields)
    except DatasetError as exc:
        await deps.repo.abort(dataset_id)
        raise Unprocessable(
            f"{fmt} file: {exc}", code="invalid_dataset", details={"line": exc.line, "format": fmt}
        ) from None
    except BaseException:
        with contextlib.suppress(Exception):
            await deps.repo.abort(dataset_id)
        raise
    finally:
        _discard(path)
    return public({**meta, **fields})


async def owned(deps: DatasetDeps, owner_id: str, dataset_id: str) -> dict[str, Any]:
    """The dataset if ``owner_id`` owns it; another user's dataset is 404 as a missing one is."""
    doc = await deps.repo.get(dataset_id)
    if doc is None or doc["owner_id"] != owner_id:
        raise NotFound("dataset not found", code="dataset_not_found", details={"dataset_id": dataset_id})
    return doc


async def get(deps: DatasetDeps, owner_id: str, dataset_id: str) -> dict[str, Any]:
    doc = await owned(deps, owner_id, dataset_id)
    return public(doc, await deps.repo.rows(dataset_id, 0, SAMPLE_ROWS))


async def list_(deps: DatasetDeps, owner_id: str, limit: int, offset: int) -> dict[str, Any]:
    docs, total = await deps.repo.page(owner_id, limit, offset)
    return {"items": [public(d) for d in docs], "total": total, "limit": limit, "offset": offset}


async def rows(deps: DatasetDeps, owner_id: str, dataset_id: str, offset: int, limit: int) -> dict[str, Any]:
    doc = await owned(deps, owner_id, dataset_id)
    return {
        "dataset_id": dataset_id,
        "offset": offset,
        "limit": limit,
        "total": doc["rows"],
        "rows": await deps.repo.rows(dataset_id, offset, limit),
    }


async def delete(deps: DatasetDeps, owner_id: str, dataset_id: str) -> None:
    await owned(deps, owner_id, dataset_id)
    await deps.repo.delete(dataset_id)
