"""The templates service's erasure of a deleted user (real MongoDB-wire server, a database of its own), through
the ``UserDeleted`` handler."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tests.support.erasure import temp_db

from llmts_common.contracts import UserDeleted
from llmts_templates.adapters.erasure import MongoUserErasure
from llmts_templates.adapters.mongo import TEMPLATES, VERSIONS
from llmts_templates.entrypoints.account_events import on_user_deleted

pytestmark = pytest.mark.connected


async def test_a_deleted_users_templates_and_versions_go_and_nothing_else() -> None:
    async with temp_db("templates_erase") as db:
        await db[TEMPLATES].insert_many(
            [
                {"_id": "t1", "owner_id": "ann", "visibility": "public"},
                {"_id": "t2", "owner_id": "ann", "visibility": "private", "deleted": True},
                {"_id": "t3", "owner_id": "bob", "visibility": "public"},
            ]
        )
        await db[VERSIONS].insert_many(
            [{"_id": f"{t}:{v}", "template_id": t, "version": v} for t in ("t1", "t2", "t3") for v in (1, 2)]
        )
        event = UserDeleted(user_id="ann", deleted_at=datetime.now(UTC), by="self")
        erasure = MongoUserErasure(db)
        assert await on_user_deleted(event, erasure=erasure) == {"templates": 2, "versions": 4, "datasets": 0}
        assert await on_user_deleted(event, erasure=erasure) == {
            "templates": 0,
            "versions": 0,
            "datasets": 0,
        }  # redelivery
        assert [d["_id"] async for d in db[TEMPLATES].find({})] == ["t3"]
        assert await db[VERSIONS].count_documents({"template_id": "t3"}) == 2
