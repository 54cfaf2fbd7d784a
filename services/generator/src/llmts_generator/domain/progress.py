"""Progress maths: throttling (≤ 4 events per second per job), ETA and projected cost; the progress event."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmts_common.contracts import GenerationProgress, Usage
from llmts_generator.domain.scheduling import Scheduler
from llmts_generator.domain.state import RUNNING, TERMINAL


@dataclass
class ProgressThrottle:
    """Allows one progress event per ``min_interval_s`` (0.25 s = at most 4 per second)."""

    min_interval_s: float = 0.25
    _last: float | None = None

    def due(self, now: float) -> bool:
        return self._last is None or now - self._last >= self.min_interval_s

    def mark(self, now: float) -> None:
        self._last = now

    def try_emit(self, now: float) -> bool:
        if self.due(now):
            self.mark(now)
            return True
        return False


@dataclass
class RateEstimator:
    """Items per second from the last ``window`` acceptance times, falling back to the whole-run average."""

    window: int = 64
    _times: deque[float] = field(default_factory=deque)
    started_at: float | None = None
    _count: int = 0

    def start(self, now: float) -> None:
        if self.started_at is None:
            self.started_at = now

    def record(self, now: float) -> None:
        self._times.append(now)
        self._count += 1
        if len(self._times) > self.window:
            self._times.popleft()

    def rate(self, now: float) -> float | None:
        if len(self._times) >= 2 and self._times[-1] > self._times[0]:
            return (len(self._times) - 1) / (self._times[-1] - self._times[0])
        if self.started_at is not None and self._count and now > self.started_at:
            return self._count / (now - self.started_at)
        return None


def eta_seconds(remaining: int, rate: float | None) -> float | None:
    if remaining <= 0:
        return 0.0
    if not rate or rate <= 0:
        return None
    return round(remaining / rate, 2)


def status_progress(
    status: str,
    requested: int | None,
    succeeded: int,
    elapsed_s: float | None,
    live_rate: float | None = None,
) -> dict[str, float | None]:
    """``{percent, eta_seconds}`` of a job's status: valid items over requested, and the items still missing at the
    rate of valid items observed (the runner's recent rate when it runs here, else the run's average since it
    started). ``eta_seconds`` is 0 once the job ended and null while there is no rate to go by."""
    percent = round(min(100.0, 100.0 * succeeded / requested), 1) if requested else None
    if status in TERMINAL:
        return {"percent": percent, "eta_seconds": 0.0}
    if status != RUNNING or not requested:
        return {"percent": percent, "eta_seconds": None}
    rate = live_rate
    if not rate and succeeded > 0 and elapsed_s:
        rate = succeeded / elapsed_s
    return {"percent": percent, "eta_seconds": eta_seconds(requested - succeeded, rate)}


def projected_cost(requested: int, succeeded: int, cost_usd: float) -> float | None:
    """Spent so far + cost per valid item (all attempts included) × items still missing."""
    if succeeded <= 0:
        return None
    per_item = cost_usd / succeeded
    return round(cost_usd + per_item * max(0, requested - succeeded), 10)


def job_progress(
    job_id: str,
    user_id: str,
    sched: Scheduler,
    calls: int,
    usage: Usage,
    rate: float | None,
    concurrency: Mapping[str, Mapping[str, Any]],
) -> GenerationProgress:
    """The progress event of a running job: counts, usage, projected cost, ETA and the provider's concurrency."""
    return GenerationProgress(
        job_id=job_id,
        user_id=user_id,
        requested=sched.requested,
        succeeded=sched.succeeded,
        rejected=sched.rejected,
        in_flight=len(sched.in_flight) + len(sched.judging),  # targets being generated or judged
        attempts=calls,
        usage=usage,
        projected_cost_usd=projected_cost(sched.requested, sched.succeeded, usage.cost_usd),
        eta_seconds=eta_seconds(sched.requested - sched.succeeded, rate),
        concurrency=dict(concurrency),
    )


def counted_as_published(event: GenerationProgress, items: int, rejections: int) -> GenerationProgress:
    """``event`` counting only what is on Kafka already: at most ``items`` items and ``rejections`` rejections
    (the publication watermarks + 1). The scheduler counts an item when it is accepted, before the writer stored it
    and the flusher published its ``ItemGenerated``; a consumer reading a progress event must find every item it
    counts before it on the job's partition."""
    succeeded, rejected = min(event.succeeded, max(0, items)), min(event.rejected, max(0, rejections))
    if (succeeded, rejected) == (event.succeeded, event.rejected):
        return event
    return event.model_copy(update={"succeeded": succeeded, "rejected": rejected})
