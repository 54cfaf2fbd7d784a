"""Error-rate circuit breaker of one job: stop spending when most recent attempts fail."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class CircuitBreaker:
    """Trips when, over the last ``window`` outcomes (at least ``min_calls``), the failure ratio ≥ ``threshold``.

    An outcome is one item attempt: valid output = success; invalid/duplicate output or a provider error that
    exhausted its retries = failure. Retried transient errors (429, 5xx) are not outcomes: backoff handles them.
    Once tripped it stays open: the job stops launching attempts and ends with ``stop_reason=error_rate``.
    """

    window: int = 40
    min_calls: int = 20
    threshold: float = 0.9
    _outcomes: deque[bool] = field(default_factory=deque, repr=False)
    _failures: int = 0
    tripped: bool = False

    def record(self, ok: bool) -> bool:
        """Record an outcome; return True if the breaker is (now) open."""
        self._outcomes.append(ok)
        if not ok:
            self._failures += 1
        if len(self._outcomes) > self.window and not self._outcomes.popleft():
            self._failures -= 1
        if len(self._outcomes) >= self.min_calls and self.failure_ratio >= self.threshold:
            self.tripped = True
        return self.tripped

    def reset(self) -> None:
        """Close again with no history (the job moved to another model: the old model's failures do not count)."""
        self._outcomes.clear()
        self._failures = 0
        self.tripped = False

    @property
    def calls(self) -> int:
        return len(self._outcomes)

    @property
    def failure_ratio(self) -> float:
        return self._failures / len(self._outcomes) if self._outcomes else 0.0
