"""The gateway's ``auth.events`` handlers on an in-memory collection (a fake with just the operators they use):
disabled and deleted users' tokens refused, enable never undoing a deletion nor a later disable, redeliveries
idempotent, a deleted user's outbox entries erased, another replica learning the set on its re-read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from llmts_common.auth import Principal
from llmts_common.contracts import UserDeleted, UserDisabled, UserEnabled
from llmts_common.errors import Unauthorized
from llmts_gateway.adapters.accounts import RevocationCheckingVerifier, RevokedUsers
from llmts_gateway.entrypoints.account_events import on_user_deleted, on_user_disabled, on_user_enabled

pytestmark = pytest.mark.unit

T0 = datetime.now(UTC)
DAY = timedelta(days=1)


def _get(doc: dict[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _matches(doc: dict[str, Any], query: dict[str, Any]) -> bool:
    for path, cond in query.items():
        value = _get(doc, path)
        if isinstance(cond, dict):
            ops = {"$lt": lambda a, b: a < b, "$lte": lambda a, b: a <= b, "$gte": lambda a, b: a >= b}
            if value is None or not all(ops[op](value, arg) for op, arg in cond.items()):
                return False
        elif value != cond:
            return False
    return True


@dataclass
class Result:
    deleted_count: int = 0


class FakeCollection:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def update_one(self, query: dict[str, Any], update: dict[str, Any], upsert: bool = False) -> None:
        doc = self.docs.get(query["_id"])
        if doc is None:
            assert upsert
            doc = self.docs[query["_id"]] = {"_id": query["_id"]}
        doc.update(update.get("$set", {}))
        for key, value in update.get("$max", {}).items():
            doc[key] = max(doc.get(key, value), value)

    async def delete_one(self, query: dict[str, Any]) -> Result:
        for key, doc in list(self.docs.items()):
            if _matches(doc, query):
                del self.docs[key]
                return Result(1)
        return Result(0)

    async def delete_many(self, query: dict[str, Any]) -> Result:
        gone = [k for k, d in self.docs.items() if _matches(d, query)]
        for key in gone:
            del self.docs[key]
        return Result(len(gone))

    async def find_one(self, query: dict[str, Any]) -> dict[str, Any] | None:
        return next((d for d in self.docs.values() if _matches(d, query)), None)

    async def _iter(self, query: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        for doc in list(self.docs.values()):
            if _matches(doc, query):
                yield doc

    def find(self, query: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        return self._iter(query)


class StaticVerifier:
    async def verify(self, token: str) -> Principal:
        return Principal(user_id=token, email=None, token_id=None, claims={"sub": token})


def disabled(at: datetime) -> UserDisabled:
    return UserDisabled(user_id="ann", disabled_at=at, by="admin")


async def test_disable_refuses_at_once_and_enable_lets_in_again() -> None:
    col = FakeCollection()
    revoked = RevokedUsers(col, retention=DAY)  # type: ignore[arg-type]
    verifier = RevocationCheckingVerifier(StaticVerifier(), revoked)
    await on_user_disabled(disabled(T0), revoked=revoked)
    await on_user_disabled(disabled(T0), revoked=revoked)  # redelivery
    assert len(col.docs) == 1
    with pytest.raises(Unauthorized) as err:
        await verifier.verify("ann")
    assert err.value.code == "account_revoked"
    assert (await verifier.verify("bob")).user_id == "bob"
    await on_user_enabled(
        UserEnabled(user_id="ann", enabled_at=T0 + timedelta(seconds=1), by="a"), revoked=revoked
    )
    assert (await verifier.verify("ann")).user_id == "ann"
    assert col.docs == {}


async def test_an_older_enable_does_not_undo_a_newer_disable_nor_a_deletion() -> None:
    col = FakeCollection()
    revoked = RevokedUsers(col, retention=DAY)  # type: ignore[arg-type]
    await on_user_disabled(disabled(T0 + timedelta(seconds=5)), revoked=revoked)
    await on_user_enabled(
        UserEnabled(user_id="ann", enabled_at=T0, by="a"), revoked=revoked
    )  # replayed, older
    assert revoked.is_revoked("ann")
    outbox = FakeCollection()
    outbox.docs = {
        "c1": {"_id": "c1", "envelope": {"data": {"user_id": "ann"}}},
        "c2": {"_id": "c2", "envelope": {"data": {"user_id": "bob"}}},
    }
    deleted = UserDeleted(user_id="ann", deleted_at=T0 + timedelta(seconds=6), by="self")
    await on_user_deleted(deleted, revoked=revoked, outbox=outbox)  # type: ignore[arg-type]
    await on_user_deleted(deleted, revoked=revoked, outbox=outbox)  # type: ignore[arg-type]
    assert list(outbox.docs) == ["c2"]
    await on_user_enabled(
        UserEnabled(user_id="ann", enabled_at=T0 + timedelta(seconds=9), by="a"), revoked=revoked
    )
    assert revoked.is_revoked("ann")  # a deletion is final
    assert col.docs["ann"]["reason"] == "deleted"


async def test_another_replica_learns_the_set_on_its_reread_and_entries_expire() -> None:
    col = FakeCollection()
    here = RevokedUsers(col, retention=DAY)  # type: ignore[arg-type]
    there = RevokedUsers(col, retention=DAY)  # type: ignore[arg-type]
    await on_user_disabled(disabled(T0), revoked=here)
    assert not there.is_revoked("ann")
    assert await there.reload() == 1
    assert there.is_revoked("ann")
    assert not there.is_revoked("ann", now=T0 + DAY + timedelta(seconds=1))
    stale = RevokedUsers(col, retention=timedelta(minutes=1))  # type: ignore[arg-type]
    await stale.revoke("old", reason="deleted", at=T0 - timedelta(hours=1))
    assert await there.reload() == 1  # the expired entry is dropped from the collection too
    assert "old" not in col.docs
