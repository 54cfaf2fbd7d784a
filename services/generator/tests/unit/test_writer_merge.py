"""Group commit: queued operations fold into one job update, in submission order."""

from __future__ import annotations

from llmts_common.envelope import Envelope
from llmts_generator.folding import Op, merge_ops


def env(n: int) -> Envelope:
    return Envelope(
        type="t", source="s", subject="j", dataschema="urn", schemaversion=1, data={"n": n}, id=f"e{n}"
    )


def test_merge_sums_increments_and_keeps_order() -> None:
    started = ({"id": "e0", "topic": "generation.events", "envelope": {}}, env(0))
    ops = [
        Op(set={"status": "running"}, job_outbox=[started]),
        Op(inc={"counts.attempts": 1, "usage.cost_usd": 0.5}, max={"next_slot": 3}, attempts=[{"_id": "a1"}]),
        Op(
            inc={"counts.attempts": 1, "next_index": 1},
            max={"next_slot": 2},
            items=[{"_id": "i0", "index": 0}],
            item_events=[(env(1), "generation.events")],
        ),
        Op(set={"status": "completed"}, inc={"usage.cost_usd": 0.25}),
    ]
    update, batch = merge_ops(ops)
    assert update["$inc"] == {"counts.attempts": 2, "usage.cost_usd": 0.75, "next_index": 1}
    assert update["$max"] == {"next_slot": 3}
    assert update["$set"] == {"status": "completed"}  # later ops win
    assert update["$push"] == {"_outbox": {"$each": [started[0]]}}
    assert [d["_id"] for d in batch.items] == ["i0"]
    assert [d["_id"] for d in batch.attempts] == ["a1"]
    assert [(e.id, oid) for e, _, oid in batch.publish] == [("e0", "e0"), ("e1", None)]


def test_empty() -> None:
    update, batch = merge_ops([])
    assert update == {}
    assert batch.items == []
    assert batch.publish == []
