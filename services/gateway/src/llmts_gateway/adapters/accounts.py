"""What the gateway keeps about accounts: the users whose access tokens must be refused before they expire.

``revoked_users`` (gateway-owned collection): one document per disabled or deleted user, written by the
``auth.events`` consumer (one consumer group for all replicas). Every replica keeps the set in memory and re-reads
it every ``REVOKED_USERS_REFRESH_SECONDS``, so a token is refused at once on the replica that consumed the event and
within that interval on the others, without a database read per request. An entry expires after
``REVOKED_USERS_RETENTION_SECONDS`` (longer than an access token lives: no token issued before the event is still
valid by then, and no new one can be issued to a disabled or deleted account).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from llmts_common.auth import Principal
from llmts_common.errors import Unauthorized
from llmts_common.mongo import Collection, IndexSpec, utcnow

log = logging.getLogger("llmts.gateway.accounts")

COLLECTION = "revoked_users"
INDEXES = [IndexSpec(COLLECTION, [("expires_at", 1)], name="expires_at")]


class RevokedUsers:
    def __init__(self, col: Collection, *, retention: timedelta) -> None:
        self._col = col
        self._retention = retention
        self._ids: dict[str, datetime] = {}  # user id → until when its tokens are refused

    def is_revoked(self, user_id: str, *, now: datetime | None = None) -> bool:
        until = self._ids.get(user_id)
        return until is not None and until > (now or utcnow())

    async def revoke(self, user_id: str, *, reason: str, at: datetime) -> None:
        """Idempotent: the same event twice leaves one entry (the later expiry)."""
        until = at + self._retention
        await self._col.update_one(
            {"_id": user_id},
            {"$set": {"reason": reason, "at": at}, "$max": {"expires_at": until}},
            upsert=True,
        )
        self._ids[user_id] = max(until, self._ids.get(user_id, until))

    async def restore(self, user_id: str, *, at: datetime) -> None:
        """An enabled account: drop a ``disabled`` entry older than the enable (never a deletion)."""
        await self._col.delete_one({"_id": user_id, "reason": "disabled", "at": {"$lte": at}})
        doc = await self._col.find_one({"_id": user_id})
        if doc is None:
            self._ids.pop(user_id, None)

    async def reload(self) -> int:
        now = utcnow()
        await self._col.delete_many({"expires_at": {"$lt": now}})
        self._ids = {
            doc["_id"]: _aware(doc["expires_at"])
            async for doc in self._col.find({"expires_at": {"$gte": now}})
        }
        return len(self._ids)

    async def run(self, stop: asyncio.Event, *, interval: float) -> None:
        """Keep this replica's set in step with the collection (others' consumers write it too)."""
        while not stop.is_set():
            try:
                await self.reload()
            except Exception as exc:  # Mongo away: keep the last known set, try again next tick
                log.warning("revoked users reload failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)


def _aware(value: datetime) -> datetime:
    """BSON dates come back naive (UTC) unless the client is tz-aware."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class RevocationCheckingVerifier:
    """The token verifier the gateway's routes use: the JWKS verifier, then the revoked-users set."""

    def __init__(self, inner: Any, revoked: RevokedUsers) -> None:
        self.inner = inner
        self.revoked = revoked

    async def verify(self, token: str) -> Principal:
        principal: Principal = await self.inner.verify(token)
        if self.revoked.is_revoked(principal.user_id):
            raise Unauthorized("this account is disabled or deleted", code="account_revoked")
        return principal


async def forget_commands(col: Collection, user_id: str) -> int:
    """Erase the user's entries of the gateway's command outbox (published or not): their jobs are gone too."""
    result = await col.delete_many({"envelope.data.user_id": user_id})
    return int(result.deleted_count)
