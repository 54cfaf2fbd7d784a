"""Batch mode, the pure part: custom ids, the lines a job has at the provider, the slots waiting for them, what a
resumed job rebuilds from what is durable, and the polling backoff.

A **line** is one provider call of a slot sent through the provider's Batch API. Its custom id is
``job/slot/call`` (``call`` numbers the slot's calls as the sync path does, so a line's attempt document has the
same id, :func:`~llmts_generator.domain.ports.attempt_id`, whether it ran in a batch or not). A line goes into a
batch once; its answer is stored as that attempt, so a line whose attempt is stored is never ingested twice, and a
line listed in a persisted batch is never submitted again.

The job document keeps its batches under ``batches.<batch id>`` (:func:`batch_record`): the lines each holds
(``[slot, target, item attempt, call]``), written right after the provider created the batch, and ``ingested`` once
its results are durable. Before the provider is asked, ``batch_pending`` (:func:`pending_submission`) records the
lines and a token the batch is tagged with (metadata ``llmts_submission``): a job that died between the provider's
answer and the record finds its batch again by that tag instead of submitting the lines twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmts_common.contracts import GenerationRequested
from llmts_generator.domain.ports import attempt_id
from llmts_generator.domain.repair import Message

RETRY_OUTCOMES = frozenset({"retried", "expired"})  # a line that must be sent again (not an item attempt)


def unsupported_feature(request: GenerationRequested) -> str | None:
    """What a batch job does not run (a line is one answer judged by the template's rules): None when it can run."""
    template = request.template
    if template.stages:
        return "multi-stage templates"
    if template.judge is not None:
        return "an LLM judge"
    if template.validation.near_duplicates is not None:
        return "near-duplicate control"
    return None


def custom_id(job_id: str, slot: int, call: int) -> str:
    return f"{job_id}/{slot}/{call}"


def parse_custom_id(value: str) -> tuple[str, int, int] | None:
    """``(job id, slot, call)`` of a custom id, None when it is not one of ours."""
    job_id, _, rest = value.rpartition("/")
    job_id, _, slot = job_id.rpartition("/")
    try:
        return (job_id, int(slot), int(rest)) if job_id else None
    except ValueError:
        return None


@dataclass(frozen=True)
class LineRef:
    """One line: which slot and target it works, its item attempt and its call number."""

    slot: int
    target: int
    item_attempt: int
    call: int

    def packed(self) -> list[int]:
        return [self.slot, self.target, self.item_attempt, self.call]

    @classmethod
    def unpack(cls, raw: Iterable[Any]) -> LineRef:
        slot, target, item_attempt, call = (int(v) for v in raw)
        return cls(slot, target, item_attempt, call)


def record_key(batch_id: str) -> str:
    """The batch's key under ``batches`` in the job document (a field name holds no dot or dollar)."""
    return batch_id.replace(".", "_").replace("$", "_")


SUBMISSION_TAG = "llmts_submission"  # the batch metadata key of a submission's token


def batch_record(
    batch_id: str,
    lines: Iterable[LineRef],
    *,
    round_no: int,
    submitted_at: Any,
    submission: str | None = None,
) -> dict[str, Any]:
    """What the job document keeps of one submitted batch."""
    return {
        "id": batch_id,
        "lines": [line.packed() for line in lines],
        "round": round_no,
        "submitted_at": submitted_at,
        "submission": submission,
        "ingested": False,
    }


def pending_submission(token: str, lines: Iterable[LineRef], at: Any) -> dict[str, Any]:
    """``batch_pending`` of the job document: lines about to be submitted under ``token`` (tagged on the batch),
    written before the provider is asked; a restarted job finds a batch created meanwhile by that tag."""
    return {"token": token, "lines": [line.packed() for line in lines], "at": at}


@dataclass
class OpenSlot:
    """A slot whose target is neither accepted nor rejected yet."""

    slot: int
    target: int
    item_attempt: int = 0  # item attempts made (first + repairs)
    call: int = 0  # calls made (lines sent, retries included)
    retries: int = 0  # lines of the current item attempt sent again (expired, transient errors)
    resend: bool = False  # the next line repeats the current item attempt (it expired or failed transiently)
    messages: list[Message] | None = None  # the next line's messages (None: the original prompts)
    awaiting: str | None = None  # the custom id of the line at the provider now

    def next_line(self) -> LineRef:
        """The slot's next line (and count it): the same item attempt again after an expired line, else the next."""
        if not self.resend:
            self.item_attempt += 1
            self.retries = 0
        self.resend = False
        self.call += 1
        return LineRef(self.slot, self.target, self.item_attempt, self.call)


@dataclass
class Rebuilt:
    """What a resumed batch job finds: its open slots, the lines still at the provider (by custom id) and the
    batches not ingested yet."""

    open: dict[int, OpenSlot] = field(default_factory=dict)
    awaiting: dict[str, LineRef] = field(default_factory=dict)
    pending_batches: dict[str, list[LineRef]] = field(default_factory=dict)
    stored: set[str] = field(default_factory=set)  # attempt ids stored (their lines are ingested)
    next_slot: int = 0


def rebuild(
    job_id: str,
    attempts: Iterable[Mapping[str, Any]],
    ended_slots: set[int],
    batches: Mapping[str, Mapping[str, Any]],
) -> Rebuilt:
    """The open slots of a resumed job from its stored attempts, its ended slots (accepted or rejected items) and
    its persisted batches. A slot whose last stored attempt asked for a repair starts its next item attempt afresh
    (the answer to repair is not kept); one whose line expired or failed transiently sends the same attempt again."""
    out = Rebuilt()
    for a in attempts:
        slot = int(a["slot"])
        out.stored.add(str(a["_id"]))
        out.next_slot = max(out.next_slot, slot + 1)
        if slot in ended_slots:
            continue
        s = out.open.setdefault(slot, OpenSlot(slot, int(a["target"])))
        s.item_attempt = max(s.item_attempt, int(a.get("item_attempt", 1)))
        if int(a.get("call", 0)) >= s.call:
            s.call = int(a.get("call", 0))
            s.resend = a.get("outcome") in RETRY_OUTCOMES
    for key, record in batches.items():
        batch_id = str(record.get("id") or key)
        lines = [LineRef.unpack(raw) for raw in record.get("lines") or []]
        out.next_slot = max([out.next_slot, *(line.slot + 1 for line in lines)])
        if record.get("ingested"):
            continue
        out.pending_batches[batch_id] = lines
        for line in lines:
            if attempt_id(job_id, line.slot, line.call) in out.stored or line.slot in ended_slots:
                continue
            s = out.open.setdefault(line.slot, OpenSlot(line.slot, line.target))
            s.item_attempt = max(s.item_attempt, line.item_attempt)
            s.call = max(s.call, line.call)
            s.resend = False
            s.awaiting = custom_id(job_id, line.slot, line.call)
            out.awaiting[s.awaiting] = line
    return out


@dataclass(frozen=True)
class PollPolicy:
    """How often a job asks the provider about its batches: ``initial_s``, growing by ``factor`` while nothing
    changes, at most ``max_s``; back to ``initial_s`` when lines progressed."""

    initial_s: float = 2.0
    max_s: float = 60.0
    factor: float = 1.5

    def next(self, current: float, progressed: bool) -> float:
        if progressed:
            return self.initial_s
        return min(self.max_s, max(self.initial_s, current * self.factor))
