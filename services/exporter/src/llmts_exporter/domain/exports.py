"""The export aggregate: its states, the legal transitions, and when an export may run.

    queued ──claim──▶ running ──▶ ready
      ▲                  │  └────▶ failed
      └──(job not ready: release)┘
    queued ──(bad request / gave up waiting)──▶ failed

``ready`` and ``failed`` are final: a redelivered command or a second worker never changes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ExportStatus = Literal["queued", "running", "ready", "failed"]
FINAL_STATUSES: frozenset[str] = frozenset({"ready", "failed"})

_ALLOWED: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "failed"}),
    "running": frozenset({"running", "queued", "ready", "failed"}),
    "ready": frozenset(),
    "failed": frozenset(),
}


class InvalidTransition(ValueError):
    """An export was asked to move to a state it cannot reach from where it is."""


def check_transition(current: str, target: str) -> None:
    if target not in _ALLOWED.get(current, frozenset()):
        raise InvalidTransition(f"export cannot go from {current} to {target}")


class JobView(BaseModel):
    """The exporter's own projection of a generation job (built from ``generation.events``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    job_id: str
    user_id: str | None = None
    status: str | None = None
    terminal: bool = False
    requested: int = 0
    succeeded: int = 0
    rejected: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    model: str | None = None
    models: list[str] = Field(
        default_factory=list,
        description="The models (``provider/id``) the job's items came from, in order of first use.",
    )
    template_id: str | None = None
    template_version: int | None = None
    template_name: str | None = None
    output_format: Literal["json", "text"] | None = None
    item_schema: dict[str, Any] | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    stop_reason: str | None = Field(default=None, description="Why the job ended short, when it did.")
    diversity: dict[str, Any] | None = Field(
        default=None,
        description="The diversity report of the job's latest completed round (GenerationCompleted).",
    )

    def owned_by(self, user_id: str) -> bool:
        return self.user_id is not None and self.user_id == user_id


@dataclass(frozen=True)
class Run:
    """Every item the job will ever have is projected: build the file."""


@dataclass(frozen=True)
class Wait:
    reason: str


@dataclass(frozen=True)
class Fail:
    reason: str


Readiness = Run | Wait | Fail


def readiness(
    job: JobView | None,
    *,
    job_id: str,
    user_id: str,
    items_projected: int,
    now: datetime,
    deadline: datetime,
) -> Readiness:
    """Whether an export of ``job_id`` for ``user_id`` can run now, must wait, or has failed.

    A job the exporter has not heard of yet may just have been accepted: it waits until ``deadline``. A job of
    another user is reported exactly like an unknown one (no existence leak). A finished job whose items have not
    all been projected yet (events of one job are ordered, but a producer's outbox may relay late) also waits.
    """
    late = now >= deadline
    if job is None or job.user_id is None:
        if late:
            return Fail(f"job {job_id} is not known to the exporter (waited until {deadline.isoformat()})")
        return Wait("waiting for the job to be known")
    if not job.owned_by(user_id):
        return Fail(f"job {job_id} not found")
    if not job.terminal:
        if late:
            return Fail(f"job {job_id} did not finish in time (still {job.status or 'running'})")
        return Wait("waiting for the job to finish")
    if items_projected < job.succeeded:
        if late:
            return Fail(
                f"job {job_id} finished with {job.succeeded} items but only {items_projected} arrived in time"
            )
        return Wait("waiting for the job's items")
    return Run()


def can_retry(attempts: int, max_attempts: int) -> bool:
    """A claimed export that crashed ``attempts`` times may be claimed again while under the limit."""
    return attempts < max_attempts
