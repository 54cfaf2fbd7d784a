"""The quota ledger in Mongo (the gateway-owned ``usage`` collection): one document per user.

Every write is a single-document conditional ``update_one``, so admissions on any number of gateway replicas are
exact without transactions:

- **reserve**: ``$inc`` of the counters and ``$set`` of the jobs' reservations, guarded by the limits
  (``committed_micros <= budget - amount``, ``day_items <= max - items``, ``active_jobs <= max - jobs``), the
  current period/day keys and the jobs not being held yet. A batch is one update: all or nothing.
- **settle**: ``$unset`` of the job's reservation with the counters' increments, guarded by the reservation still
  being there (a second settlement matches nothing).
- **roll over** (new day / budget period): compare-and-set on the counters read.

``committed_micros`` (= ``spent_micros + reserved_micros``) is kept as its own field so the budget guard is one
comparison. The domain rules are in ``llmts_gateway.domain.quotas``; this module only stores them.
"""

from __future__ import annotations

import contextlib
import re
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from llmts_common.errors import ServiceUnavailable
from llmts_common.mongo import Collection
from llmts_gateway.domain import quotas
from llmts_gateway.domain.quotas import Ask, Ledger, Limits

COLLECTION = "usage"
MAX_TRIES = 50
SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]{1,128}$")  # a job id usable as a field name (no '.', no '$')
COUNTERS = ("spent_micros", "reserved_micros", "committed_micros", "day_items", "active_jobs")


class MongoUsageLedger:
    def __init__(self, collection: Collection) -> None:
        self._col = collection

    async def _read(self, user_id: str) -> dict[str, Any]:
        """The user's document, created (all counters at 0) on first use."""
        doc = await self._col.find_one({"_id": user_id})
        if doc is not None:
            return doc
        fresh: dict[str, Any] = {"_id": user_id, "period": "", "day": "", "jobs": {}, "overrides": {}}
        fresh.update(dict.fromkeys(COUNTERS, 0))
        with contextlib.suppress(DuplicateKeyError):
            await self._col.insert_one(fresh)
        found = await self._col.find_one({"_id": user_id})
        if found is None:
            raise ServiceUnavailable("the usage ledger could not be read")
        return found

    async def _current(self, user_id: str, defaults: Limits, now: datetime) -> tuple[Ledger, Limits]:
        """The ledger rolled over to ``now`` (stored first when it changed) and the user's limits."""
        for _ in range(MAX_TRIES):
            stored = Ledger.from_doc(await self._read(user_id))
            limits = defaults.with_overrides(stored.overrides)
            ledger = quotas.rolled_over(stored, now, limits.budget_period)
            if ledger is stored or await self._roll(stored, ledger):
                return ledger, limits
        raise ServiceUnavailable("the usage ledger is busy, retry")

    async def _roll(self, old: Ledger, new: Ledger) -> bool:
        guard = {
            "_id": old.user_id,
            "period": old.period,
            "day": old.day,
            "spent_micros": old.spent_micros,
            "reserved_micros": old.reserved_micros,
            "day_items": old.day_items,
        }
        update = {
            "$set": {
                "period": new.period,
                "day": new.day,
                "spent_micros": new.spent_micros,
                "committed_micros": new.committed_micros,
                "day_items": new.day_items,
            }
        }
        result = await self._col.update_one(guard, update)
        return result.matched_count == 1

    async def reserve(self, user_id: str, ask: Ask, *, defaults: Limits, now: datetime) -> None:
        if not all(SAFE_KEY.match(r.job_id) for r in ask.reservations):
            raise ValueError("job ids must be safe field names")
        for _ in range(MAX_TRIES):
            ledger, limits = await self._current(user_id, defaults, now)
            if all(r.job_id in ledger.jobs for r in ask.reservations):
                return  # already held (a retried admission)
            problem = quotas.refusal(ledger, ask, limits, now)
            if problem is not None:
                raise problem
            guard: dict[str, Any] = {
                "_id": user_id,
                "period": ledger.period,
                "day": ledger.day,
                "active_jobs": {"$lte": limits.max_active_jobs - ask.jobs},
                "day_items": {"$lte": limits.max_items_per_day - ask.items},
            }
            if ask.micros > 0:
                guard["committed_micros"] = {"$lte": limits.budget_micros - ask.micros}
            for r in ask.reservations:
                guard[f"jobs.{r.job_id}"] = {"$exists": False}
            update = {
                "$inc": {
                    "reserved_micros": ask.micros,
                    "committed_micros": ask.micros,
                    "day_items": ask.items,
                    "active_jobs": ask.jobs,
                },
                "$set": {f"jobs.{r.job_id}": {**r.to_doc(), "day": ledger.day} for r in ask.reservations},
            }
            if (await self._col.update_one(guard, update)).matched_count == 1:
                return
        raise ServiceUnavailable("the usage ledger is busy, retry")

    async def settle(
        self, user_id: str, job_id: str, *, cost_usd: float, produced: int, defaults: Limits, now: datetime
    ) -> bool:
        if not SAFE_KEY.match(job_id):
            return False  # never reserved: the gateway's job ids are safe keys
        for _ in range(MAX_TRIES):
            ledger, _limits = await self._current(user_id, defaults, now)
            change = quotas.settlement(ledger, job_id, cost_usd=cost_usd, produced=produced)
            if change is None:
                return False
            guard = {
                "_id": user_id,
                "period": ledger.period,
                "day": ledger.day,
                f"jobs.{job_id}.micros": change.reserved.micros,
                f"jobs.{job_id}.items": change.reserved.items,
            }
            update = {
                "$unset": {f"jobs.{job_id}": ""},
                "$inc": {
                    "spent_micros": change.spent_micros,
                    "reserved_micros": -change.reserved.micros,
                    "committed_micros": change.spent_micros - change.reserved.micros,
                    "day_items": -change.items_back,
                    "active_jobs": -1,
                },
            }
            if (await self._col.update_one(guard, update)).matched_count == 1:
                return True
        raise ServiceUnavailable("the usage ledger is busy, retry")

    async def ledger(self, user_id: str, *, defaults: Limits, now: datetime) -> Ledger:
        return (await self._current(user_id, defaults, now))[0]

    async def set_overrides(self, user_id: str, overrides: dict[str, Any]) -> None:
        await self._read(user_id)
        await self._col.update_one({"_id": user_id}, {"$set": {"overrides": overrides}})
