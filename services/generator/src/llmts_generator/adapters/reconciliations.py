"""Mongo side of the cost reconciliation: the attempts waiting for a look in the provider's books, and the writes
that settle or defer them (``domain/costs`` says which attempts are marked). Every write is conditional on the
attempt still waiting, so a lookup done twice (two processes, a restart mid-pass) changes it once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from llmts_common.mongo import Collection, Database, IndexSpec
from llmts_generator.adapters.repository import ATTEMPTS
from llmts_generator.domain.costs import DUE, GONE, SAMPLE

_WAITING = {"$in": [DUE, SAMPLE]}
_FIELDS = {"_id": 1, "provider": 1, "generation_id": 1, "reconcile_tries": 1}


class MongoReconciliations:
    def __init__(self, db: Database) -> None:
        self.attempts: Collection = db[ATTEMPTS]

    @staticmethod
    def indexes() -> list[IndexSpec]:
        return [IndexSpec(ATTEMPTS, [("reconcile", 1), ("reconcile_after", 1)], name="reconcile_after")]

    async def waiting(
        self, *, before: datetime, since: datetime, threshold: int, limit: int
    ) -> list[dict[str, Any]]:
        """Attempts to look up now, oldest first: every ``due`` one and the ``sample`` ones whose point is below
        ``threshold``, due between ``since`` and ``before``."""
        flt = {
            "$or": [{"reconcile": DUE}, {"reconcile": SAMPLE, "reconcile_point": {"$lt": threshold}}],
            "reconcile_after": {"$lte": before, "$gte": since},
        }
        cursor = self.attempts.find(flt, _FIELDS).sort([("reconcile_after", 1)]).limit(limit)
        return [dict(d) async for d in cursor]

    async def settle(self, attempt_id: str, fields: Mapping[str, Any]) -> bool:
        """Record what the provider's books say (once)."""
        result = await self.attempts.update_one(
            {"_id": attempt_id, "reconcile": _WAITING}, {"$set": dict(fields)}
        )
        return result.modified_count == 1

    async def defer(self, attempt_id: str, *, until: datetime, tries: int, error: str | None = None) -> None:
        """Look again at ``until`` (the record was not there yet, or the lookup failed)."""
        update: dict[str, Any] = {"reconcile_after": until, "reconcile_tries": tries}
        if error is not None:
            update["reconcile_error"] = error[:300]
        await self.attempts.update_one({"_id": attempt_id, "reconcile": _WAITING}, {"$set": update})

    async def give_up(self, attempt_id: str, *, tries: int, error: str) -> None:
        """No record after every try (or a lookup the provider refuses): the reported cost stands."""
        await self.attempts.update_one(
            {"_id": attempt_id, "reconcile": _WAITING},
            {"$set": {"reconcile": GONE, "reconcile_tries": tries, "reconcile_error": error[:300]}},
        )
