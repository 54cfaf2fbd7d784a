"""The exporter's erasure of a deleted user (real MongoDB-wire server, files in a directory store), through the
``UserDeleted`` handler."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.support.erasure import temp_db

from llmts_common.contracts import UserDeleted
from llmts_exporter.adapters.erasure import MongoUserErasure
from llmts_exporter.adapters.filestore import DirectoryStore
from llmts_exporter.adapters.mongo import EXPORTS, JOB_ITEMS, JOBS
from llmts_exporter.entrypoints.account_events import on_user_deleted

pytestmark = pytest.mark.connected


async def _file(store: DirectoryStore, key: str) -> None:
    upload = await store.begin(key, filename=f"{key}.json", content_type="application/json")
    await upload.write(b"[]")
    await upload.commit()


async def test_a_deleted_users_exports_files_and_jobs_go_and_nothing_else(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    async with temp_db("exporter_erase") as db:
        await db[EXPORTS].insert_many(
            [
                {"_id": "e1", "user_id": "ann", "job_id": "j1", "file_key": "e1-r2", "attempts": 2},
                {"_id": "e2", "user_id": "bob", "job_id": "j2", "file_key": "e2-r1", "attempts": 1},
            ]
        )
        for key in ("e1-r1", "e1-r2", "e2-r1"):
            await _file(store, key)
        await db[JOBS].insert_many([{"_id": "j1", "user_id": "ann"}, {"_id": "j2", "user_id": "bob"}])
        await db[JOB_ITEMS].insert_many([{"job_id": j, "index": i} for j in ("j1", "j2") for i in range(2)])
        event = UserDeleted(user_id="ann", deleted_at=datetime.now(UTC), by="admin-1")
        erasure = MongoUserErasure(db, store)
        erased = await on_user_deleted(event, erasure=erasure)
        assert erased == {"exports": 1, "export_files": 1, "jobs": 1, "items": 2}
        assert await store.size("e1-r2") is None
        assert await store.size("e1-r1") is None  # an earlier run's file too
        assert await store.size("e2-r1") == 2
        assert await on_user_deleted(event, erasure=erasure) == {
            "exports": 0,
            "export_files": 0,
            "jobs": 0,
            "items": 0,
        }
        assert await db[EXPORTS].count_documents({}) == 1
        assert await db[JOB_ITEMS].count_documents({"job_id": "j2"}) == 2
