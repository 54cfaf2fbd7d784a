"""Mongo repository of the generator: ``generations`` (one document per job), ``items`` and ``attempts``.

Write path of a running job (one sequential writer per job, so every step below is ordered):

1. a fenced update of the job document (``lease_owner`` + ``run``): proves the lease is still ours, moves the
   live counters (a cache), and carries the job-level outbox entries (``GenerationStarted``, the terminal event);
2. ``attempts.insert_many`` — the billing truth, written before the item it may produce;
3. ``items.insert_many(ordered=True)`` — the item insert IS the reservation of its index: batches are sent one
   after the other with consecutive indexes, so what is durable is always a prefix (no holes, even if the
   process dies mid-batch); the unique ``(job_id, index)`` key refuses any second writer;
4. Kafka: the item events (their envelope id is stored on the item), then the publication watermarks
   (``published_index`` / ``published_rejected``) ride on the next job update.

On resume the counters are recomputed from ``attempts`` (each attempt counted once: unique ``_id``), the next
indexes from ``items``, and every item above the watermarks is published again with its stored envelope id
(consumers deduplicate on it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import OperationFailure

from llmts_common.mongo import TRANSIENT_MONGO_ERRORS, Collection, Database, IndexSpec, is_duplicate_key
from llmts_generator.domain.fairness import Candidate
from llmts_generator.domain.ports import LeaseLost

JOBS = "generations"
ITEMS = "items"
ATTEMPTS = "attempts"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
JOURNALS = ("_outbox",)
TERMINAL = ["completed", "completed_with_errors", "stopped", "failed", "cancelled"]


# server error codes of a node that is shutting down, restarting or not (yet) writable: worth a retry
_TRANSIENT_CODES = frozenset({6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})


def is_transient(exc: BaseException) -> bool:
    """A storage error that says "the database is away for now", not "this write is wrong"."""
    if isinstance(exc, TRANSIENT_MONGO_ERRORS):
        return True
    if isinstance(exc, OperationFailure) and not is_duplicate_key(exc):
        labels = ("RetryableWriteError", "TransientTransactionError")
        if exc.code in _TRANSIENT_CODES or any(exc.has_error_label(label) for label in labels):
            return True
        text = str(exc).lower()
        return any(word in text for word in ("shutdown", "shutting down", "interrupted", "not primary"))
    return False


class MongoGenerationRepository:
    """The :class:`~llmts_generator.domain.ports.GenerationRepository` port on MongoDB; transient failures are the
    driver's own errors (``AutoReconnect`` …), recognised by :func:`is_transient`."""

    def __init__(self, db: Database) -> None:
        self.jobs: Collection = db[JOBS]
        self.items: Collection = db[ITEMS]
        self.attempts: Collection = db[ATTEMPTS]

    def is_transient(self, exc: BaseException) -> bool:
        return is_transient(exc)

    @staticmethod
    def indexes() -> list[IndexSpec]:
        return [
            IndexSpec(ITEMS, [("job_id", 1), ("index", 1)], unique=True, name="job_index_unique"),
            IndexSpec(ATTEMPTS, [("job_id", 1), ("slot", 1), ("call", 1)], name="job_slot_call"),
            IndexSpec(JOBS, [("user_id", 1), ("created_at", -1)], name="user_created"),
            IndexSpec(JOBS, [("settled", 1), ("lease_until", 1)], name="settled_lease"),
        ]

    # --- job lifecycle ------------------------------------------------------------------------------
    async def create_job(self, doc: Mapping[str, Any]) -> bool:
        """Idempotent insert of a queued job; True if it did not exist yet."""
        fields = {k: v for k, v in doc.items() if k != "_id"}
        result = await self.jobs.update_one({"_id": doc["_id"]}, {"$setOnInsert": fields}, upsert=True)
        return result.upserted_id is not None

    async def get_job(
        self, job_id: str, projection: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        return await self.jobs.find_one({"_id": job_id}, projection)

    async def request_cancel(self, job_id: str, reason: str, now: datetime) -> dict[str, Any] | None:
        return await self.jobs.find_one_and_update(
            {"_id": job_id},
            {"$set": {"cancel_requested": True, "cancel_reason": reason, "updated_at": now}},
            projection={"status": 1, "lease_owner": 1, "user_id": 1},
            return_document=ReturnDocument.AFTER,
        )

    async def reopen(self, doc: Mapping[str, Any], update: Mapping[str, Any]) -> bool:
        """Start a new round of a settled job, if it is still as read (status, round): True when it did."""
        flt: dict[str, Any] = {"_id": doc["_id"], "status": doc.get("status"), "settled": True}
        flt["round"] = doc.get("round", {"$exists": False})
        result = await self.jobs.update_one(flt, update)
        return result.modified_count == 1

    async def claimable(
        self, now: datetime, limit: int, skip_users: frozenset[str] = frozenset()
    ) -> list[Candidate]:
        query: dict[str, Any] = {"settled": False, "lease_until": {"$lt": now}}
        if skip_users:
            query["$or"] = [{"user_id": {"$nin": sorted(skip_users)}}, {"cancel_requested": True}]
        fields = {"_id": 1, "user_id": 1, "cancel_requested": 1}
        cursor = self.jobs.find(query, fields).limit(limit)
        return [
            Candidate(str(d["_id"]), str(d.get("user_id")), bool(d.get("cancel_requested")))
            async for d in cursor
        ]

    async def claim(self, job_id: str, owner: str, now: datetime, ttl: timedelta) -> dict[str, Any] | None:
        """Take the lease if it expired; returns the job document with ``run`` incremented."""
        return await self.jobs.find_one_and_update(
            {"_id": job_id, "settled": False, "lease_until": {"$lt": now}},
            {"$set": {"lease_owner": owner, "lease_until": now + ttl, "updated_at": now}, "$inc": {"run": 1}},
            return_document=ReturnDocument.AFTER,
        )

    async def renew(self, job_id: str, owner: str, run: int, until: datetime) -> dict[str, Any] | None:
        return await self.jobs.find_one_and_update(
            {"_id": job_id, "lease_owner": owner, "run": run},
            {"$set": {"lease_until": until}},
            projection={"cancel_requested": 1, "cancel_reason": 1, "status": 1},
            return_document=ReturnDocument.AFTER,
        )

    async def release(self, job_id: str, owner: str, run: int) -> None:
        await self.jobs.update_one(
            {"_id": job_id, "lease_owner": owner, "run": run},
            {"$set": {"lease_owner": None, "lease_until": EPOCH}},
        )

    async def write(
        self,
        job_id: str,
        owner: str,
        run: int,
        update: Mapping[str, Any],
        extra_filter: Mapping[str, Any] | None = None,
    ) -> None:
        """A fenced update of the job document; raises :class:`LeaseLost` if it matched nothing."""
        flt: dict[str, Any] = {"_id": job_id, "lease_owner": owner, "run": run}
        if extra_filter:
            flt.update(extra_filter)
        result = await self.jobs.update_one(flt, dict(update))
        if result.matched_count != 1:
            raise LeaseLost(job_id)

    async def write_batch(
        self, job_id: str, owner: str, run: int, seq: int, update: Mapping[str, Any]
    ) -> None:
        """The writer's fenced job update, numbered: it sets ``write_seq`` = ``seq`` and applies only if the
        stored ``write_seq`` is not ``seq`` yet, so sending it again after a failure whose outcome is unknown
        (a connection lost mid-write) never applies its ``$inc`` / ``$push`` twice. Raises :class:`LeaseLost` if
        the job is not ours any more."""
        body = {k: dict(v) for k, v in update.items()}
        body.setdefault("$set", {})["write_seq"] = seq
        flt = {"_id": job_id, "lease_owner": owner, "run": run, "write_seq": {"$ne": seq}}
        result = await self.jobs.update_one(flt, body)
        if result.matched_count == 1:
            return
        doc = await self.jobs.find_one({"_id": job_id}, {"lease_owner": 1, "run": 1, "write_seq": 1})
        if doc and doc.get("lease_owner") == owner and doc.get("run") == run and doc.get("write_seq") == seq:
            return  # the earlier try was applied before its answer got lost
        raise LeaseLost(job_id)

    async def settle(self, job_id: str, owner: str, run: int) -> bool:
        """Mark a terminal job whose journals are empty as settled and drop the lease."""
        result = await self.jobs.update_one(
            {
                "_id": job_id,
                "lease_owner": owner,
                "run": run,
                "status": {"$in": TERMINAL},
                **{j: {"$size": 0} for j in JOURNALS},
            },
            {"$set": {"settled": True, "lease_owner": None, "lease_until": EPOCH}},
        )
        return result.matched_count == 1

    # --- hot path -------------------------------------------------------------------------------------
    async def insert_attempts(self, attempts: Sequence[dict[str, Any]]) -> None:
        """Billing records; an attempt already stored (same ``_id``) is skipped, never counted twice."""
        if not attempts:
            return
        try:
            await self.attempts.insert_many(list(attempts), ordered=False)
        except Exception as exc:
            if not _only_duplicates(exc):
                raise

    async def insert_orphan_attempts(self, attempts: Sequence[dict[str, Any]], run: int) -> int:
        """Billing records of a run that lost its lease (after a long storage outage): calls that were answered
        (and billed by the provider) but never written. An attempt already stored by this run is skipped; the
        others get a run-qualified ``_id`` (``<job>:<slot>:<call>:r<run>``) because the new owner may reuse
        their slot numbers. Returns how many were inserted."""
        if not attempts:
            return 0
        ids = [a["_id"] for a in attempts]
        stored = {d["_id"] async for d in self.attempts.find({"_id": {"$in": ids}, "run": run}, {"_id": 1})}
        late = [
            {**a, "_id": f"{a['_id']}:r{run}", "orphaned": True} for a in attempts if a["_id"] not in stored
        ]
        await self.insert_attempts(late)
        return len(late)

    async def insert_items(self, items: Sequence[dict[str, Any]], *, again: bool = False) -> None:
        """Ordered insert of consecutive items; a duplicate key means another writer: raises :class:`LeaseLost`.

        ``again``: the same items were sent before and the outcome is unknown (storage failure mid-write); those
        already stored with the same envelope id are ours and are skipped, the rest is inserted."""
        if not items:
            return
        try:
            await self.items.insert_many(list(items), ordered=True)
        except Exception as exc:
            if not _only_duplicates(exc):
                raise
            if not again:
                raise LeaseLost(f"item index already taken: {exc}") from exc
            ids = [it["_id"] for it in items]
            found = {d["_id"]: d.get("event_id") async for d in self.items.find({"_id": {"$in": ids}})}
            if any(found[it["_id"]] != it.get("event_id") for it in items if it["_id"] in found):
                raise LeaseLost(f"item index already taken: {exc}") from exc
            missing = [it for it in items if it["_id"] not in found]
            await self.insert_items(missing)

    async def job_outbox(self, job_id: str) -> list[dict[str, Any]]:
        doc = await self.jobs.find_one({"_id": job_id}, {"_outbox": 1})
        return list((doc or {}).get("_outbox") or [])

    async def pull_outbox(self, job_id: str, ids: Sequence[str]) -> None:
        if ids:
            await self.jobs.update_one({"_id": job_id}, {"$pull": {"_outbox": {"id": {"$in": list(ids)}}}})

    async def set_watermarks(self, job_id: str, published_index: int, published_rejected: int) -> None:
        await self.jobs.update_one(
            {"_id": job_id},
            {"$max": {"published_index": published_index, "published_rejected": published_rejected}},
        )

    # --- state rebuilt on resume --------------------------------------------------------------------
    async def job_items(self, job_id: str) -> list[dict[str, Any]]:
        """Every item of a job (accepted and rejected), for the resume rebuild."""
        return [d async for d in self.items.find({"job_id": job_id})]

    async def attempt_totals(self, job_id: str) -> dict[str, Any]:
        pipeline: list[dict[str, Any]] = [
            {"$match": {"job_id": job_id}},
            {
                "$group": {
                    "_id": None,
                    "calls": {"$sum": 1},
                    "item_attempts": {"$sum": "$item_attempt_done"},
                    "prompt_tokens": {"$sum": "$prompt_tokens"},
                    "completion_tokens": {"$sum": "$completion_tokens"},
                    "cost_usd": {"$sum": "$cost_usd"},
                    "cache_hits": {"$sum": "$cache_hit"},
                    "cache_misses": {"$sum": "$cache_miss"},
                    **_judge_sums(),
                }
            },
        ]
        rows = await (await self.attempts.aggregate(pipeline)).to_list()
        row = rows[0] if rows else {}
        last = (
            await self.attempts.find({"job_id": job_id}, {"slot": 1}).sort([("slot", -1)]).limit(1).to_list()
        )
        return {
            "calls": int(row.get("calls", 0)),
            "item_attempts": int(row.get("item_attempts", 0)),
            "prompt_tokens": int(row.get("prompt_tokens", 0)),
            "completion_tokens": int(row.get("completion_tokens", 0)),
            "cost_usd": float(row.get("cost_usd", 0.0)),
            "cache_hits": int(row.get("cache_hits", 0) or 0),
            "cache_misses": int(row.get("cache_misses", 0) or 0),
            "next_slot": int(last[0]["slot"]) + 1 if last else 0,
            "judge_calls": int(row.get("judge_calls", 0) or 0),
            "judge_prompt_tokens": int(row.get("judge_prompt_tokens", 0) or 0),
            "judge_completion_tokens": int(row.get("judge_completion_tokens", 0) or 0),
            "judge_cost_usd": float(row.get("judge_cost_usd", 0.0) or 0.0),
        }

    async def item_attempts_by_target(self, job_id: str) -> dict[int, int]:
        pipeline: list[dict[str, Any]] = [
            {"$match": {"job_id": job_id}},
            {"$group": {"_id": "$target", "n": {"$sum": "$item_attempt_done"}}},
        ]
        rows = await (await self.attempts.aggregate(pipeline)).to_list()
        return {int(r["_id"]): int(r["n"] or 0) for r in rows if r.get("_id") is not None}

    # --- reads --------------------------------------------------------------------------------------
    async def list_items(
        self, job_id: str, *, include_rejected: bool, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        flt: dict[str, Any] = {"job_id": job_id}
        if not include_rejected:
            flt["status"] = "accepted"
        total = await self.items.count_documents(flt)
        # accepted items first in index order (0..N-1), then rejected ones (-1, -2, … → by rejection order)
        docs = [d async for d in self.items.find(flt).sort([("index", 1)])]
        docs.sort(key=lambda d: (d.get("status") != "accepted", abs(int(d.get("index", 0)))))
        return docs[offset : offset + limit], total

    async def items_page(self, job_id: str, *, after: int, limit: int) -> list[dict[str, Any]]:
        cursor = (
            self.items.find({"job_id": job_id, "status": "accepted", "index": {"$gt": after}})
            .sort([("index", 1)])
            .limit(limit)
        )
        return [d async for d in cursor]

    async def attempts_of(self, job_id: str, *, limit: int) -> list[dict[str, Any]]:
        cursor = self.attempts.find({"job_id": job_id}).sort([("slot", 1), ("call", 1)]).limit(limit)
        return [d async for d in cursor]

    async def history(
        self, user_id: str, filters: Mapping[str, Any], *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int, dict[str, Any]]:
        flt = history_filter(user_id, filters)
        total = await self.jobs.count_documents(flt)
        projection = {"request": 0, **dict.fromkeys(JOURNALS, 0)}
        cursor = self.jobs.find(flt, projection).sort([("created_at", -1)]).skip(offset).limit(limit)
        docs = [d async for d in cursor]
        totals = await self.user_totals(flt)
        return docs, total, totals

    async def user_totals(self, flt: Mapping[str, Any]) -> dict[str, Any]:
        pipeline: list[dict[str, Any]] = [
            {"$match": dict(flt)},
            {
                "$group": {
                    "_id": None,
                    "jobs": {"$sum": 1},
                    "items": {"$sum": "$counts.succeeded"},
                    "rejected": {"$sum": "$counts.rejected"},
                    "attempts": {"$sum": "$counts.attempts"},
                    "prompt_tokens": {"$sum": "$usage.prompt_tokens"},
                    "completion_tokens": {"$sum": "$usage.completion_tokens"},
                    "cost_usd": {"$sum": "$usage.cost_usd"},
                }
            },
        ]
        rows = await (await self.jobs.aggregate(pipeline)).to_list()
        row = rows[0] if rows else {}
        return {
            "jobs": int(row.get("jobs", 0)),
            "items": int(row.get("items", 0)),
            "rejected": int(row.get("rejected", 0)),
            "attempts": int(row.get("attempts", 0)),
            "usage": {
                "prompt_tokens": int(row.get("prompt_tokens", 0)),
                "completion_tokens": int(row.get("completion_tokens", 0)),
                "cost_usd": round(float(row.get("cost_usd", 0.0)), 10),
            },
        }

    async def backlog(self, now: datetime) -> dict[str, int]:
        """The global backlog (every replica sees the same): unsettled jobs, those no generator holds a live
        lease on (queued, or orphaned by a dead replica), and the items the unsettled jobs still owe."""
        pipeline: list[dict[str, Any]] = [
            {"$match": {"settled": False}},
            {
                "$group": {
                    "_id": None,
                    "jobs": {"$sum": 1},
                    "requested": {"$sum": "$requested"},
                    "succeeded": {"$sum": "$counts.succeeded"},
                }
            },
        ]
        rows = await (await self.jobs.aggregate(pipeline)).to_list()
        row = rows[0] if rows else {}
        waiting = await self.jobs.count_documents({"settled": False, "lease_until": {"$lt": now}})
        return {
            "jobs": int(row.get("jobs", 0)),
            "queued": int(waiting),
            "items_pending": max(0, int(row.get("requested", 0)) - int(row.get("succeeded", 0))),
        }


def history_filter(user_id: str, filters: Mapping[str, Any]) -> dict[str, Any]:
    flt: dict[str, Any] = {"user_id": user_id}
    if filters.get("status"):
        flt["status"] = filters["status"]
    if filters.get("template_id"):
        flt["template.id"] = filters["template_id"]
    if filters.get("model"):
        # a part of the model id, any case (``llama`` finds ``meta-llama/llama-3.3-70b-instruct:free``)
        flt["model.id"] = {"$regex": re.escape(str(filters["model"])[:300]), "$options": "i"}
    created: dict[str, Any] = {}
    if filters.get("from"):
        created["$gte"] = filters["from"]
    if filters.get("to"):
        created["$lte"] = filters["to"]
    if created:
        flt["created_at"] = created
    q = filters.get("q")
    if q:
        pattern = re.escape(str(q)[:100])
        flt["$or"] = [
            {"template.name": {"$regex": pattern, "$options": "i"}},
            {"_id": {"$regex": pattern, "$options": "i"}},
            {"model.id": {"$regex": pattern, "$options": "i"}},
        ]
    return flt


def _only_duplicates(exc: BaseException) -> bool:
    details = getattr(exc, "details", None)
    if isinstance(details, Mapping):
        errors = details.get("writeErrors") or []
        return bool(errors) and all(e.get("code") in (11000, 11001) for e in errors)
    return is_duplicate_key(exc)


def _judge_sums() -> dict[str, Any]:
    """The LLM judge's calls, tokens and cost among a job's attempts (``kind: "judge"``)."""
    judge = {"$eq": ["$kind", "judge"]}
    sums: dict[str, Any] = {"judge_calls": {"$sum": {"$cond": [judge, 1, 0]}}}
    for name in ("prompt_tokens", "completion_tokens", "cost_usd"):
        sums[f"judge_{name}"] = {"$sum": {"$cond": [judge, f"${name}", 0]}}
    return sums
