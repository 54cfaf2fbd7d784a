"""The directory store (``EXPORT_STORE=dir``): atomic publish of a file, replace on re-run, safe keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmts_exporter.adapters.filestore import DirectoryStore


async def _read(store: DirectoryStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(key)])


async def test_directory_store_round_trip_and_rerun(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "exports")
    interrupted = await store.begin("e1", filename="a.csv", content_type="text/csv")
    await interrupted.write(b"half")
    assert await store.size("e1") is None  # nothing visible until commit

    upload = await store.begin("e1", filename="a.csv", content_type="text/csv")  # a re-run replaces it
    payload = "Привет, мир\n".encode() * 100_000
    for i in range(0, len(payload), 65_536):
        await upload.write(payload[i : i + 65_536])
    await upload.commit()
    assert await store.size("e1") == len(payload)
    assert await _read(store, "e1") == payload

    aborted = await store.begin("e2", filename="b.csv", content_type="text/csv")
    await aborted.write(b"x")
    await aborted.abort()
    assert await store.size("e2") is None
    await store.delete("e1")
    await store.delete("e1")  # already gone: no error
    assert list((tmp_path / "exports").iterdir()) == []  # delete also removes a stale .part
    assert await store.size("e1") is None


@pytest.mark.parametrize("key", ["../etc/passwd", "a/b", "", "x" * 200, "имя"])
async def test_directory_store_rejects_unsafe_keys(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="unsafe file key"):
        await DirectoryStore(tmp_path).size(key)
