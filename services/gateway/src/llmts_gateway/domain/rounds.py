"""A new round of a finished job (``POST /generate/{id}/extend|resume|retry-rejected``), decided in the gateway:
which jobs may take it (409 otherwise, the same rules as the generator's ``domain/rounds``), how many items it
asks for (the quota's items), and what it may cost (the reservation).

The reservation of round ``r`` is held under ``<job id>_r<r>`` (the first round's under the job id), so each
round is admitted and settled on its own: the round's terminal event carries ``round``, ``round_succeeded`` and
``round_cost_usd``. The estimate of a round is the job's own cost per accepted item so far × the round's items ×
:data:`ESTIMATE_MARGIN` (no template needed), capped by the round's ``max_cost_usd``; a job that cost nothing
so far (a free model, answers from the cache) reserves nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from llmts_common.errors import Conflict, InvalidField
from llmts_gateway.domain import quotas

ESTIMATE_MARGIN: Final = 1.5
TERMINAL: Final = frozenset({"completed", "completed_with_errors", "stopped", "failed", "cancelled"})
REOPENABLE: Final[dict[str, frozenset[str]]] = {
    "extend": TERMINAL,
    "resume": TERMINAL - {"completed"},
    "retry_rejected": TERMINAL - {"completed"},
}
_PATH = {"extend": "extend", "resume": "resume", "retry_rejected": "retry-rejected"}


@dataclass(frozen=True)
class RoundPlan:
    kind: str
    round: int  # the number the new round will have
    items: int  # items the round asks for (extend: count; otherwise the missing ones)
    requested: int  # the job's N after the round opens


def reservation_key(job_id: str, round_no: int) -> str:
    return job_id if round_no <= 1 else f"{job_id}_r{round_no}"


def plan(job: Mapping[str, Any], kind: str, count: int, *, max_count: int) -> RoundPlan:
    """The round ``kind`` of ``job`` (a ``JobPublic`` answer), or a 409 / 422 saying why not."""
    status = str(job.get("status"))
    counts = job.get("counts") or {}
    requested = int(job.get("requested") or counts.get("requested") or 0)
    succeeded, rejected = int(counts.get("succeeded", 0)), int(counts.get("rejected", 0))
    if status not in TERMINAL:
        raise Conflict(f"the job is {status}: wait until it ends", code="job_not_finished")
    if status not in REOPENABLE[kind]:
        raise Conflict(f"a {status} job has nothing to {_PATH[kind]}", code="job_not_reopenable")
    if kind != "extend" and succeeded >= requested:
        raise Conflict(f"the job has all its {requested} items", code="nothing_missing")
    if kind == "retry_rejected" and rejected == 0:
        raise Conflict("the job has no rejected slot", code="nothing_rejected")
    total = requested + count if kind == "extend" else requested
    if total > max_count:
        raise InvalidField(
            f"the job would have {total} items, more than the maximum of {max_count} items per job",
            loc=("body", "count"),
            type="less_than_equal",
        )
    items = count if kind == "extend" else requested - succeeded
    return RoundPlan(kind, int(job.get("round") or 1) + 1, items, total)


def estimate_micros(job: Mapping[str, Any], items: int, max_cost_usd: float | None) -> int:
    """What the round may cost: the job's cost per accepted item × items × margin, capped by the round's cap."""
    usage = job.get("usage") or {}
    counts = job.get("counts") or {}
    cost, succeeded = float(usage.get("cost_usd", 0.0)), int(counts.get("succeeded", 0))
    per_item = cost / succeeded if succeeded else cost
    micros = quotas.to_micros(per_item * items * ESTIMATE_MARGIN)
    if max_cost_usd is not None:
        micros = min(micros, quotas.to_micros(max_cost_usd))
    return max(0, micros)
