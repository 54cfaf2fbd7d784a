"""Rounds of a job: a finished job runs again under the same id (pure).

- **extend** ``count``: N grows to N + count; the new targets N..N+count-1 are generated (new indexes after the
  existing ones); dedup hashes and ``unique`` rule values are rebuilt from the stored items, so a new item never
  duplicates an old one.
- **resume**: a cancelled, failed, stopped (``max_cost_usd``) or completed-with-errors job runs its missing
  targets; accepted items are kept.
- **retry_rejected**: in the exactly-N model a rejected slot's target goes back to the queue, so the slots that
  stay rejected at the end are the job's missing targets that were tried; retry-rejected regenerates them (with the
  never-tried ones, if a cap stopped the job first) and needs at least one rejection and one missing item.

Each round gets a fresh item-attempt budget (for its missing targets) and its own ``max_cost_usd`` (spent in the
round only), counted from the job's totals when the round opened (``round_base``). Items, attempts and rejections
of earlier rounds stay; the job's usage is cumulative, a round's spend is ``usage - round_base``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from llmts_generator.domain import state
from llmts_generator.domain.scheduling import attempt_budget


@dataclass(frozen=True)
class Reopen:
    kind: str  # extend | resume | retry_rejected
    count: int
    max_cost_usd: float | None
    command_id: str
    at: datetime


class ReopenRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check(doc: Mapping[str, Any], reopen: Reopen) -> None:
    """Raise :class:`ReopenRefused` when the job cannot start this round now."""
    status = str(doc.get("status"))
    counts = doc.get("counts") or {}
    succeeded, rejected = int(counts.get("succeeded", 0)), int(counts.get("rejected", 0))
    requested = int(doc.get("requested") or 0)
    if not state.is_terminal(status) or not doc.get("settled"):
        raise ReopenRefused("job_not_finished", f"the job is {status}: wait until it ends")
    if not state.can_reopen(reopen.kind, status):
        raise ReopenRefused("job_not_reopenable", f"a {status} job cannot be {_verb(reopen.kind)}")
    if reopen.kind == "extend" and reopen.count < 1:
        raise ReopenRefused("invalid_count", "extend needs a count of at least 1")
    if reopen.kind != "extend" and succeeded >= requested:
        raise ReopenRefused("nothing_missing", f"the job has all its {requested} items")
    if reopen.kind == "retry_rejected" and rejected == 0:
        raise ReopenRefused("nothing_rejected", "the job has no rejected slot")


def _verb(kind: str) -> str:
    return {"extend": "extended", "resume": "resumed"}.get(kind, "retried")


def reopen_update(doc: Mapping[str, Any], reopen: Reopen) -> dict[str, Any]:
    """The update that starts the round (queued again, a new round number, the round's budget base)."""
    counts, usage = doc.get("counts") or {}, doc.get("usage") or {}
    requested = int(doc.get("requested") or 0) + (reopen.count if reopen.kind == "extend" else 0)
    request = json.loads(str(doc["request"]))
    request["count"] = requested
    number = int(doc.get("round", 1)) + 1
    entry = {
        "round": number,
        "kind": reopen.kind,
        "count": reopen.count if reopen.kind == "extend" else requested - int(counts.get("succeeded", 0)),
        "requested": requested,
        "max_cost_usd": reopen.max_cost_usd,
        "command_id": reopen.command_id,
        "at": reopen.at,
    }
    sets = {
        "status": state.QUEUED,
        "settled": False,
        "request": json.dumps(request),
        "requested": requested,
        "round": number,
        "round_base": {
            "item_attempts": int(counts.get("item_attempts", 0)),
            "cost_usd": float(usage.get("cost_usd", 0.0)),
            "succeeded": int(counts.get("succeeded", 0)),
        },
        "max_cost_usd": reopen.max_cost_usd,
        "cancel_requested": False,
        "stop_reason": None,
        "error": None,
        "queued_at": reopen.at,
        "updated_at": reopen.at,
        "started_at": None,
        "finished_at": None,
        "cancelled_at": None,
    }
    return {"$set": sets, "$push": {"rounds": entry}}


def has_round(doc: Mapping[str, Any], command_id: str) -> bool:
    """The command already started its round (a redelivery)."""
    return any(r.get("command_id") == command_id for r in doc.get("rounds") or [] if isinstance(r, Mapping))


@dataclass(frozen=True)
class RoundCaps:
    budget: int
    max_cost_usd: float | None


def round_caps(
    doc: Mapping[str, Any], requested: int, max_attempts: int, factor: float, request_cap: float | None
) -> RoundCaps:
    """The item-attempt budget and the cost cap of the current round, in job totals: the first round uses the
    request's; a later one adds a fresh budget for its missing targets and its own cap to the base."""
    base = doc.get("round_base")
    if int(doc.get("round", 1)) <= 1 or not isinstance(base, Mapping):
        return RoundCaps(attempt_budget(requested, max_attempts, factor), request_cap)
    missing = max(1, requested - int(base.get("succeeded", 0)))
    budget = int(base.get("item_attempts", 0)) + attempt_budget(missing, max_attempts, factor)
    cap = doc.get("max_cost_usd")
    cost_cap = float(base.get("cost_usd", 0.0)) + float(cap) if cap is not None else None
    return RoundCaps(budget, cost_cap)


def round_end(doc: Mapping[str, Any], succeeded: int, cost_usd: float) -> dict[str, Any]:
    """The round fields of a terminal event: the round, and from round 2 on what it added and cost."""
    number = int(doc.get("round", 1))
    base = doc.get("round_base")
    if number <= 1 or not isinstance(base, Mapping):
        return {"round": number}
    return {
        "round": number,
        "round_succeeded": max(0, succeeded - int(base.get("succeeded", 0))),
        "round_cost_usd": round(max(0.0, cost_usd - float(base.get("cost_usd", 0.0))), 10),
    }
