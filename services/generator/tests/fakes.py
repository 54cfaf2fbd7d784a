"""In-memory implementations of the generator's ports (fakes, not mocks): unit tests drive a real
:class:`~llmts_generator.runner.JobRunner` against them and assert on their state.

- :class:`FakeGenerationRepository`: the ``GenerationRepository`` port on dicts, with the Mongo adapter's
  semantics (fenced writes, numbered job updates, attempts keyed by id, ordered item inserts that reserve the
  index) and a switchable **outage**: while ``down``, every call raises ``AutoReconnect`` — the transient error the
  Mongo adapter lets through — and the first write of each kind is applied before it fails (a lost reply).
- :class:`FakeEvents`: the ``EventSink`` port; keeps every published envelope.
- :class:`ScriptedProvider`: the ``llmts_providers.Provider`` protocol; answers from a script (a function of the
  call number and the request) and records every call.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import AutoReconnect

from llmts_common.contracts import Message
from llmts_common.envelope import Envelope
from llmts_generator.adapters.repository import EPOCH, TERMINAL, is_transient
from llmts_generator.domain.caching import CachedAnswer
from llmts_generator.domain.fairness import Candidate
from llmts_generator.domain.ports import LeaseLost
from llmts_providers import ChatRequest, ChatResult, ProviderError
from llmts_providers.models import ConnectionTestResult, ModelRecord

# the calls of the repository that fail during an outage, and those whose first call is applied before failing
APPLY_THEN_FAIL = ("write_batch", "insert_attempts", "insert_items")


def _get(doc: Mapping[str, Any], dotted: str) -> Any:
    cur: Any = doc
    for part in dotted.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _set(doc: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    cur = doc
    for part in parents:
        cur = cur.setdefault(part, {})
    cur[last] = value


def apply_update(doc: dict[str, Any], update: Mapping[str, Any]) -> None:
    """The subset of MongoDB update operators the generator uses."""
    for key, value in (update.get("$set") or {}).items():
        _set(doc, key, copy.deepcopy(value))
    for key, value in (update.get("$inc") or {}).items():
        _set(doc, key, (_get(doc, key) or 0) + value)
    for key, value in (update.get("$max") or {}).items():
        current = _get(doc, key)
        if current is None or value > current:
            _set(doc, key, value)
    for key, value in (update.get("$push") or {}).items():
        each = value["$each"] if isinstance(value, Mapping) and "$each" in value else [value]
        doc.setdefault(key, []).extend(copy.deepcopy(list(each)))
    for key, cond in (update.get("$pull") or {}).items():
        ids = set(cond["id"]["$in"])
        doc[key] = [e for e in doc.get(key) or [] if e.get("id") not in ids]


class FakeGenerationRepository:
    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.items: dict[str, dict[str, Any]] = {}
        self.attempts: dict[str, dict[str, Any]] = {}
        self.down = False
        self.failures = 0  # calls refused by the outage
        self.calls: list[str] = []  # every call that went through (write log)
        self._lost_reply: set[str] = set()

    # --- outage ---------------------------------------------------------------------------------------
    def outage(self, down: bool) -> None:
        self.down = down
        self._lost_reply = set(APPLY_THEN_FAIL) if down else set()

    def _gate(self, name: str) -> bool:
        """Raise while down; True when the call must be applied and then fail (its reply is lost)."""
        if not self.down:
            self.calls.append(name)
            return False
        self.failures += 1
        if name in self._lost_reply:
            self._lost_reply.discard(name)
            return True
        raise AutoReconnect(f"connection closed ({name})")

    def _lost(self, name: str) -> None:
        self.calls.append(name)
        raise AutoReconnect(f"connection closed after the write ({name})")

    def is_transient(self, exc: BaseException) -> bool:
        return is_transient(exc)

    # --- job lifecycle --------------------------------------------------------------------------------
    async def create_job(self, doc: Mapping[str, Any]) -> bool:
        self._gate("create_job")
        if doc["_id"] in self.jobs:
            return False
        self.jobs[str(doc["_id"])] = copy.deepcopy(dict(doc))
        return True

    async def get_job(
        self, job_id: str, projection: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        self._gate("get_job")
        doc = self.jobs.get(job_id)
        return copy.deepcopy(doc) if doc is not None else None

    async def request_cancel(self, job_id: str, reason: str, now: datetime) -> dict[str, Any] | None:
        self._gate("request_cancel")
        doc = self.jobs.get(job_id)
        if doc is None:
            return None
        apply_update(doc, {"$set": {"cancel_requested": True, "cancel_reason": reason, "updated_at": now}})
        return {k: doc.get(k) for k in ("_id", "status", "lease_owner", "user_id")}

    async def reopen(self, doc: Mapping[str, Any], update: Mapping[str, Any]) -> bool:
        self._gate("reopen")
        current = self.jobs.get(str(doc["_id"]))
        if current is None or not current.get("settled") or current.get("status") != doc.get("status"):
            return False
        if current.get("round") != doc.get("round"):
            return False
        apply_update(current, update)
        return True

    def _expired(self, doc: Mapping[str, Any], now: datetime) -> bool:
        return not doc.get("settled") and (doc.get("lease_until") or EPOCH) < now

    async def claimable(
        self, now: datetime, limit: int, skip_users: frozenset[str] = frozenset()
    ) -> list[Candidate]:
        self._gate("claimable")
        found = [
            Candidate(job_id, str(d.get("user_id")), bool(d.get("cancel_requested")))
            for job_id, d in self.jobs.items()
            if self._expired(d, now) and (d.get("cancel_requested") or d.get("user_id") not in skip_users)
        ]
        return found[:limit]

    async def claim(self, job_id: str, owner: str, now: datetime, ttl: timedelta) -> dict[str, Any] | None:
        self._gate("claim")
        doc = self.jobs.get(job_id)
        if doc is None or not self._expired(doc, now):
            return None
        apply_update(
            doc,
            {"$set": {"lease_owner": owner, "lease_until": now + ttl, "updated_at": now}, "$inc": {"run": 1}},
        )
        return copy.deepcopy(doc)

    def _ours(self, job_id: str, owner: str, run: int) -> dict[str, Any] | None:
        doc = self.jobs.get(job_id)
        if doc is None or doc.get("lease_owner") != owner or doc.get("run") != run:
            return None
        return doc

    async def renew(self, job_id: str, owner: str, run: int, until: datetime) -> dict[str, Any] | None:
        self._gate("renew")
        doc = self._ours(job_id, owner, run)
        if doc is None:
            return None
        doc["lease_until"] = until
        return {k: doc.get(k) for k in ("_id", "cancel_requested", "cancel_reason", "status")}

    async def release(self, job_id: str, owner: str, run: int) -> None:
        self._gate("release")
        doc = self._ours(job_id, owner, run)
        if doc is not None:
            apply_update(doc, {"$set": {"lease_owner": None, "lease_until": EPOCH}})

    async def write(
        self,
        job_id: str,
        owner: str,
        run: int,
        update: Mapping[str, Any],
        extra_filter: Mapping[str, Any] | None = None,
    ) -> None:
        self._gate("write")
        doc = self._ours(job_id, owner, run)
        if doc is None or any(doc.get(k) != v for k, v in (extra_filter or {}).items()):
            raise LeaseLost(job_id)
        apply_update(doc, update)

    async def write_batch(
        self, job_id: str, owner: str, run: int, seq: int, update: Mapping[str, Any]
    ) -> None:
        lost = self._gate("write_batch")
        doc = self._ours(job_id, owner, run)
        if doc is None:
            raise LeaseLost(job_id)
        if doc.get("write_seq") != seq:
            body = {k: dict(v) for k, v in update.items()}
            body.setdefault("$set", {})["write_seq"] = seq
            apply_update(doc, body)
        if lost:
            self._lost("write_batch")

    async def settle(self, job_id: str, owner: str, run: int) -> bool:
        self._gate("settle")
        doc = self._ours(job_id, owner, run)
        if doc is None or doc.get("status") not in TERMINAL or doc.get("_outbox"):
            return False
        apply_update(doc, {"$set": {"settled": True, "lease_owner": None, "lease_until": EPOCH}})
        return True

    # --- hot path -------------------------------------------------------------------------------------
    async def insert_attempts(self, attempts: Sequence[dict[str, Any]]) -> None:
        if not attempts:
            return
        lost = self._gate("insert_attempts")
        for a in attempts:
            self.attempts.setdefault(a["_id"], copy.deepcopy(a))
        if lost:
            self._lost("insert_attempts")

    async def insert_orphan_attempts(self, attempts: Sequence[dict[str, Any]], run: int) -> int:
        if not attempts:
            return 0
        self._gate("insert_orphan_attempts")
        late = [
            {**a, "_id": f"{a['_id']}:r{run}", "orphaned": True}
            for a in attempts
            if not (a["_id"] in self.attempts and self.attempts[a["_id"]].get("run") == run)
        ]
        for a in late:
            self.attempts.setdefault(a["_id"], copy.deepcopy(a))
        return len(late)

    async def insert_items(self, items: Sequence[dict[str, Any]], *, again: bool = False) -> None:
        if not items:
            return
        lost = self._gate("insert_items")
        taken = {(d["job_id"], d["index"]): d for d in self.items.values()}
        for it in items:  # ordered: stops at the first taken index
            stored = taken.get((it["job_id"], it["index"])) or self.items.get(it["_id"])
            if stored is not None:
                if again and stored.get("event_id") == it.get("event_id"):
                    continue  # ours, from the try whose reply was lost
                raise LeaseLost(f"item index already taken: {it['_id']}")
            self.items[it["_id"]] = copy.deepcopy(it)
        if lost:
            self._lost("insert_items")

    async def pull_outbox(self, job_id: str, ids: Sequence[str]) -> None:
        self._gate("pull_outbox")
        if ids and job_id in self.jobs:
            apply_update(self.jobs[job_id], {"$pull": {"_outbox": {"id": {"$in": list(ids)}}}})

    async def set_watermarks(self, job_id: str, published_index: int, published_rejected: int) -> None:
        self._gate("set_watermarks")
        if job_id in self.jobs:
            marks = {"published_index": published_index, "published_rejected": published_rejected}
            apply_update(self.jobs[job_id], {"$max": marks})

    # --- state rebuilt on resume ----------------------------------------------------------------------
    async def job_items(self, job_id: str) -> list[dict[str, Any]]:
        self._gate("job_items")
        return [copy.deepcopy(d) for d in self.items.values() if d["job_id"] == job_id]

    async def attempt_totals(self, job_id: str) -> dict[str, Any]:
        self._gate("attempt_totals")
        rows = [a for a in self.attempts.values() if a["job_id"] == job_id]
        judged = [a for a in rows if a.get("kind") == "judge"]
        return {
            "calls": len(rows),
            "item_attempts": sum(int(a.get("item_attempt_done", 0)) for a in rows),
            "prompt_tokens": sum(int(a["prompt_tokens"]) for a in rows),
            "completion_tokens": sum(int(a["completion_tokens"]) for a in rows),
            "cost_usd": float(sum(a["cost_usd"] for a in rows)),
            "cache_hits": sum(int(a.get("cache_hit", 0)) for a in rows),
            "cache_misses": sum(int(a.get("cache_miss", 0)) for a in rows),
            "next_slot": max((int(a["slot"]) for a in rows), default=-1) + 1,
            "judge_calls": len(judged),
            "judge_prompt_tokens": sum(int(a["prompt_tokens"]) for a in judged),
            "judge_completion_tokens": sum(int(a["completion_tokens"]) for a in judged),
            "judge_cost_usd": float(sum(a["cost_usd"] for a in judged)),
        }

    async def item_attempts_by_target(self, job_id: str) -> dict[int, int]:
        self._gate("item_attempts_by_target")
        counts: dict[int, int] = {}
        for a in self.attempts.values():
            if a["job_id"] == job_id:
                counts[int(a["target"])] = counts.get(int(a["target"]), 0) + int(
                    a.get("item_attempt_done", 0)
                )
        return counts

    # --- reads ----------------------------------------------------------------------------------------
    def accepted(self, job_id: str) -> list[dict[str, Any]]:
        docs = [d for d in self.items.values() if d["job_id"] == job_id and d["status"] == "accepted"]
        return sorted(docs, key=lambda d: int(d["index"]))

    def rejected(self, job_id: str) -> list[dict[str, Any]]:
        docs = [d for d in self.items.values() if d["job_id"] == job_id and d["status"] == "rejected"]
        return sorted(docs, key=lambda d: -int(d["index"]))

    def attempts_of_job(self, job_id: str) -> list[dict[str, Any]]:
        docs = [a for a in self.attempts.values() if a["job_id"] == job_id]
        return sorted(docs, key=lambda a: (int(a["slot"]), int(a["call"])))

    async def list_items(
        self, job_id: str, *, include_rejected: bool, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        self._gate("list_items")
        docs = self.accepted(job_id) + (self.rejected(job_id) if include_rejected else [])
        return copy.deepcopy(docs[offset : offset + limit]), len(docs)

    async def items_page(self, job_id: str, *, after: int, limit: int) -> list[dict[str, Any]]:
        self._gate("items_page")
        return copy.deepcopy([d for d in self.accepted(job_id) if int(d["index"]) > after][:limit])

    async def attempts_of(self, job_id: str, *, limit: int) -> list[dict[str, Any]]:
        self._gate("attempts_of")
        return copy.deepcopy(self.attempts_of_job(job_id)[:limit])

    async def history(
        self, user_id: str, filters: Mapping[str, Any], *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int, dict[str, Any]]:
        self._gate("history")
        docs = [
            d
            for d in self.jobs.values()
            if d.get("user_id") == user_id
            and (not filters.get("status") or d.get("status") == filters["status"])
        ]
        docs.sort(key=lambda d: d.get("created_at") or EPOCH, reverse=True)
        totals = {
            "jobs": len(docs),
            "items": sum(int(_get(d, "counts.succeeded") or 0) for d in docs),
            "rejected": sum(int(_get(d, "counts.rejected") or 0) for d in docs),
            "attempts": sum(int(_get(d, "counts.attempts") or 0) for d in docs),
            "usage": {
                "prompt_tokens": sum(int(_get(d, "usage.prompt_tokens") or 0) for d in docs),
                "completion_tokens": sum(int(_get(d, "usage.completion_tokens") or 0) for d in docs),
                "cost_usd": round(sum(float(_get(d, "usage.cost_usd") or 0.0) for d in docs), 10),
            },
        }
        return copy.deepcopy(docs[offset : offset + limit]), len(docs), totals


class FakeEvents:
    """The ``EventSink`` port in memory: every published envelope, in order."""

    def __init__(self, source: str = "llmts-generator") -> None:
        self.source = source
        self.published: list[tuple[Envelope, str]] = []

    def envelope_for(self, message: Message, *, message_id: str | None = None) -> Envelope:
        return message.to_envelope(source=self.source, message_id=message_id)

    async def publish(self, message: Message) -> None:
        self.published.append((self.envelope_for(message), message.TOPIC))

    async def publish_many(self, envelopes: Sequence[tuple[Envelope, str]]) -> None:
        self.published.extend(envelopes)

    def of(self, job_id: str, type_: str) -> list[dict[str, Any]]:
        """The data of the events of ``type_`` published for ``job_id`` (a republish appears again)."""
        return [env.data for env, _ in self.published if env.subject == job_id and env.type == type_]


Answer = str | ProviderError
Script = Callable[[int, ChatRequest], Answer | Awaitable[Answer]]


@dataclass
class ProviderCall:
    number: int  # 1-based, in the order the calls started
    request: ChatRequest
    outcome: str = "pending"  # answered | failed | abandoned
    cost_usd: float = 0.0


@dataclass
class ScriptedProvider:
    """The ``Provider`` protocol in memory. ``script(n, request)`` gives the answer of call ``n`` (text, or a
    :class:`ProviderError` to raise); it may be a coroutine (to hold a call in flight). ``before_call`` runs as
    each call starts (the tests' hook to observe the job at that moment)."""

    script: Script
    name: str = "openrouter"
    cost_per_call: float = 0.001
    before_call: Callable[[ProviderCall], None] | None = None
    truncated: Callable[[int], bool] = lambda _n: False  # call n hit the token cap (finish_reason "length")
    calls: list[ProviderCall] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def chat(self, request: ChatRequest) -> ChatResult:
        call = ProviderCall(next(self._numbers), request)
        self.calls.append(call)
        if self.before_call is not None:
            self.before_call(call)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)  # let the other slots start their calls: real concurrency
            answer = self.script(call.number, request)
            if not isinstance(answer, (str, ProviderError)):
                answer = await answer
        except asyncio.CancelledError:
            call.outcome = "abandoned"
            raise
        finally:
            self.in_flight -= 1
        if isinstance(answer, ProviderError):
            call.outcome = "failed"
            raise answer
        call.outcome = "answered"
        call.cost_usd = self.cost_per_call
        return ChatResult(
            text=answer,
            finish_reason="length" if self.truncated(call.number) else "stop",
            prompt_tokens=10,
            completion_tokens=5,
            cost_usd=self.cost_per_call,
            model=request.model,
            provider=self.name,
            generation_id=f"gen-{call.number}",
            cost_reported=True,
        )

    def answered(self) -> list[ProviderCall]:
        return [c for c in self.calls if c.outcome == "answered"]

    async def list_models(self) -> list[ModelRecord]:
        return []

    async def get_model(self, model_id: str) -> ModelRecord:
        raise ProviderError(f"unknown model {model_id}", self.name)

    def build_request_body(self, request: ChatRequest) -> dict[str, Any]:
        return request.model_dump(mode="json")

    async def test_connection(self) -> ConnectionTestResult:
        return ConnectionTestResult(provider=self.name, reachable=True, latency_ms=0.0, key_valid=True)

    async def aclose(self) -> None:
        return None


class FakeResponseCache:
    """The ``ResponseCache`` port on a dict keyed by (user, key); counts reads and writes."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], CachedAnswer] = {}
        self.gets = 0  # keys read, one by one or many at once
        self.single_gets = 0  # keys read one by one (a slot's own lookup)
        self.puts = 0

    async def get(self, user_id: str, key: str) -> CachedAnswer | None:
        self.gets += 1
        self.single_gets += 1
        return self.entries.get((user_id, key))

    async def get_many(self, user_id: str, keys: Sequence[str]) -> dict[str, CachedAnswer]:
        self.gets += len(keys)
        return {k: self.entries[(user_id, k)] for k in keys if (user_id, k) in self.entries}

    def put(self, user_id: str, key: str, answer: CachedAnswer) -> None:
        self.puts += 1
        self.entries[(user_id, key)] = answer

    async def flush(self, user_id: str | None = None) -> None:
        self.flushed_for = user_id
