"""The gateway's revoked-users set on the real MongoDB-wire server: idempotent handlers, a second replica that
learns the set by re-reading the collection, enable never undoing a deletion, expiry, and a deleted user's
outbox entries erased."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.support.erasure import temp_db

from llmts_common.auth import Principal
from llmts_common.contracts import UserDeleted, UserDisabled, UserEnabled
from llmts_common.errors import Unauthorized
from llmts_gateway.adapters.accounts import COLLECTION, RevocationCheckingVerifier, RevokedUsers
from llmts_gateway.entrypoints.account_events import on_user_deleted, on_user_disabled, on_user_enabled

pytestmark = pytest.mark.connected

DAY = timedelta(days=1)


class StaticVerifier:
    def __init__(self, user_id: str) -> None:
        self.user_id = user_id

    async def verify(self, token: str) -> Principal:
        return Principal(user_id=self.user_id, email=None, token_id=None, claims={"sub": self.user_id})


async def test_disable_enable_delete_across_two_replicas() -> None:
    async with temp_db("gateway_revoked") as db:
        here, there = RevokedUsers(db[COLLECTION], retention=DAY), RevokedUsers(db[COLLECTION], retention=DAY)
        now = datetime.now(UTC)
        disabled = UserDisabled(user_id="ann", disabled_at=now, by="admin")
        await on_user_disabled(disabled, revoked=here)
        await on_user_disabled(disabled, revoked=here)  # redelivery: one entry
        assert await db[COLLECTION].count_documents({}) == 1
        assert here.is_revoked("ann")
        assert not there.is_revoked("ann")  # until it re-reads
        assert await there.reload() == 1
        assert there.is_revoked("ann")
        with pytest.raises(Unauthorized) as err:
            await RevocationCheckingVerifier(StaticVerifier("ann"), there).verify("token")
        assert err.value.code == "account_revoked"
        assert (await RevocationCheckingVerifier(StaticVerifier("bob"), there).verify("t")).user_id == "bob"

        await on_user_enabled(
            UserEnabled(user_id="ann", enabled_at=now + timedelta(seconds=1), by="a"), revoked=here
        )
        assert not here.is_revoked("ann")
        await there.reload()
        assert not there.is_revoked("ann")

        outbox = db["outbox"]
        await outbox.insert_many(
            [
                {"_id": "c1", "envelope": {"data": {"user_id": "ann"}}},
                {"_id": "c2", "envelope": {"data": {"user_id": "bob"}}},
            ]
        )
        deleted = UserDeleted(user_id="ann", deleted_at=now + timedelta(seconds=2), by="self")
        await on_user_deleted(deleted, revoked=here, outbox=outbox)
        await on_user_deleted(deleted, revoked=here, outbox=outbox)
        assert [d["_id"] async for d in outbox.find({})] == ["c2"]
        # a late or replayed enable never brings a deleted user back
        await on_user_enabled(
            UserEnabled(user_id="ann", enabled_at=now + timedelta(seconds=3), by="a"), revoked=here
        )
        assert here.is_revoked("ann")
        assert here.is_revoked("ann", now=now + timedelta(hours=23))
        assert not here.is_revoked("ann", now=now + DAY + timedelta(seconds=3))  # tokens have long expired


async def test_expired_entries_are_dropped_on_reload() -> None:
    async with temp_db("gateway_revoked_exp") as db:
        revoked = RevokedUsers(db[COLLECTION], retention=timedelta(minutes=1))
        old: Any = datetime.now(UTC) - timedelta(minutes=5)
        await revoked.revoke("ann", reason="deleted", at=old)
        assert await revoked.reload() == 0
        assert await db[COLLECTION].count_documents({}) == 0
