"""Progress maths: throttling (≤ 4 events per second per job), ETA and projected cost; the progress event."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmts_common.contracts import GenerationProgress, Usage
from llmts_generator.domain.scheduling import Scheduler


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
        in_flight=len(sched.in_flight),
        attempts=calls,
        usage=usage,
        projected_cost_usd=projected_cost(sched.requested, sched.succeeded, usage.cost_usd),
        eta_seconds=eta_seconds(sched.requested - sched.succeeded, rate),
        concurrency=dict(concurrency),
    )
