"""File stores for export files: MongoDB GridFS (default) and a plain directory (``EXPORT_STORE=dir``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile

from llmts_common.mongo import Database

CHUNK = 1 << 20
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def _check_key(key: str) -> str:
    if not _SAFE_KEY.match(key):
        raise ValueError(f"unsafe file key {key!r}")
    return key


class _GridUpload:
    def __init__(self, grid_in: Any) -> None:
        self._in = grid_in

    async def write(self, data: bytes) -> None:
        await self._in.write(data)

    async def commit(self) -> None:
        await self._in.close()

    async def abort(self) -> None:
        await self._in.abort()


class GridFSStore:
    """Files in a GridFS bucket; the file ``_id`` is the export id, so a re-run replaces, never duplicates."""

    name = "gridfs"

    def __init__(self, db: Database, bucket: str = "export_files") -> None:
        self._bucket = AsyncGridFSBucket(db, bucket_name=bucket)
        self._files = db[f"{bucket}.files"]

    async def begin(self, key: str, *, filename: str, content_type: str) -> _GridUpload:
        await self.delete(key)
        grid_in = self._bucket.open_upload_stream_with_id(
            key, filename, metadata={"content_type": content_type}
        )
        return _GridUpload(grid_in)

    async def size(self, key: str) -> int | None:
        doc = await self._files.find_one({"_id": key}, {"length": 1})
        return int(doc["length"]) if doc else None

    async def read(self, key: str) -> AsyncIterator[bytes]:
        grid_out = await self._bucket.open_download_stream(key)
        while True:
            chunk = await grid_out.readchunk()
            if not chunk:
                break
            yield chunk

    async def delete(self, key: str) -> None:
        with contextlib.suppress(NoFile):  # chunks of an interrupted upload are removed all the same
            await self._bucket.delete(key)


class _DirUpload:
    def __init__(self, part: Path, final: Path) -> None:
        self._part = part
        self._final = final
        self._fh = part.open("wb")

    async def write(self, data: bytes) -> None:
        await asyncio.to_thread(self._fh.write, data)

    async def commit(self) -> None:
        def done() -> None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            os.replace(self._part, self._final)

        await asyncio.to_thread(done)

    async def abort(self) -> None:
        self._fh.close()
        self._part.unlink(missing_ok=True)


class DirectoryStore:
    """Files under one directory (a mounted volume); written to ``<key>.part`` and renamed when complete."""

    name = "dir"

    def __init__(self, root: str | Path) -> None:
        self._root = Path(root)
        self._root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self._root / _check_key(key)

    async def begin(self, key: str, *, filename: str, content_type: str) -> _DirUpload:
        final = self._path(key)
        part = final.with_name(final.name + ".part")
        return await asyncio.to_thread(_DirUpload, part, final)

    async def size(self, key: str) -> int | None:
        try:
            return (await asyncio.to_thread(self._path(key).stat)).st_size
        except FileNotFoundError:
            return None

    async def read(self, key: str) -> AsyncIterator[bytes]:
        fh = await asyncio.to_thread(self._path(key).open, "rb")
        try:
            while True:
                chunk = await asyncio.to_thread(fh.read, CHUNK)
                if not chunk:
                    break
                yield chunk
        finally:
            fh.close()

    async def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".part").unlink(missing_ok=True)
