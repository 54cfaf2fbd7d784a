"""Group-commit folding: the operations slots queue for a job fold into one fenced job update (``$inc`` summed,
``$set`` last wins, ``$max`` maxed, outbox ``$push $each``) plus the documents to insert and the events to
publish, in submission order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from llmts_common.envelope import Envelope

Publishable = tuple[Envelope, str, str | None]  # (envelope, topic, id of the job-outbox entry or None)


@dataclass
class Op:
    inc: dict[str, float] = field(default_factory=dict)
    set: dict[str, Any] = field(default_factory=dict)
    max: dict[str, int] = field(default_factory=dict)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    item_events: list[tuple[Envelope, str]] = field(default_factory=list)
    job_outbox: list[tuple[dict[str, Any], Envelope]] = field(default_factory=list)


@dataclass
class Batch:
    items: list[dict[str, Any]]
    attempts: list[dict[str, Any]]
    publish: list[Publishable]


def merge_ops(ops: Sequence[Op]) -> tuple[dict[str, Any], Batch]:
    """Fold queued operations into one job update plus the documents to insert and the events to publish."""
    inc: dict[str, float] = {}
    sets: dict[str, Any] = {}
    maxes: dict[str, int] = {}
    outbox: list[dict[str, Any]] = []
    batch = Batch([], [], [])
    for op in ops:
        for k, v in op.inc.items():
            inc[k] = inc.get(k, 0) + v
        sets.update(op.set)
        for k, m in op.max.items():
            maxes[k] = max(maxes.get(k, m), m)
        batch.items.extend(op.items)
        batch.attempts.extend(op.attempts)
        batch.publish.extend((env, topic, None) for env, topic in op.item_events)
        for entry, env in op.job_outbox:
            outbox.append(entry)
            batch.publish.append((env, entry["topic"], entry["id"]))
    update: dict[str, Any] = {}
    if inc:
        update["$inc"] = inc
    if sets:
        update["$set"] = sets
    if maxes:
        update["$max"] = maxes
    if outbox:
        update["$push"] = {"_outbox": {"$each": outbox}}
    return update, batch
