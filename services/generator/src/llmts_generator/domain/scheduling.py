"""Slot scheduling for exactly N valid items.

Vocabulary:

- **target**: one wanted item (0..N-1). Its prompt context (``index``, task) is fixed by the target, so a target
  that had to be regenerated is asked the same question again, not a different one.
- **slot**: one try at a target (first attempt + repair attempts). Slots get increasing numbers. A slot ends
  *succeeded* (its target is done), *rejected* (attempts exhausted: the target goes back to the queue and a new
  slot regenerates it) or *abandoned* (job stopping: the target stays undone).
- A slot is launched only while ``succeeded + in_flight < N`` (equivalently: an undone target is waiting) and
  ``in_flight < concurrency``; so the job never produces a surplus item.

Caps end the job early: the item-attempt budget, ``max_cost_usd`` and the error-rate breaker. The scheduler is a
plain synchronous object; the runner calls it from one event loop, so no locking is needed.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from llmts_generator.domain.breaker import CircuitBreaker
from llmts_generator.domain.state import CANCELLED, COMPLETED, COMPLETED_WITH_ERRORS, FAILED, STOPPED

STOP_ATTEMPT_BUDGET: Final = "attempt_budget_exhausted"
STOP_MAX_COST: Final = "max_cost_reached"
STOP_ERROR_RATE: Final = "error_rate"
STOP_CANCELLED: Final = "cancelled"
STOP_FATAL: Final = "fatal_error"


@dataclass(frozen=True)
class SlotPlan:
    slot: int
    target: int


@dataclass(frozen=True)
class Outcome:
    status: str
    stop_reason: str | None
    code: str | None = None
    reason: str | None = None


def attempt_budget(requested: int, max_attempts_per_item: int, factor: float = 1.0) -> int:
    """Total item attempts a job may spend: ``ceil(N × max_attempts × factor)``, at least N."""
    return max(requested, math.ceil(requested * max_attempts_per_item * factor))


@dataclass
class Scheduler:
    requested: int
    concurrency: int
    budget: int
    max_cost_usd: float | None = None
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    done_targets: Iterable[int] = ()
    next_slot: int = 0
    item_attempts: int = 0  # item attempts already spent (resumed jobs start from the stored count)
    cost_usd: float = 0.0
    calls: int = 0  # provider calls that reported (billing attempts)
    rejected: int = 0

    def __post_init__(self) -> None:
        done = set(self.done_targets)
        self.succeeded = len(done)
        self.pending: deque[int] = deque(t for t in range(self.requested) if t not in done)
        self.in_flight: dict[int, int] = {}
        self.calls_in_flight = 0
        self.stop_reason: str | None = None
        self.fatal: tuple[str, str] | None = None

    # --- launching --------------------------------------------------------------------------------------
    @property
    def stopped(self) -> bool:
        return self.stop_reason is not None

    def can_launch(self) -> bool:
        return not self.stopped and bool(self.pending) and len(self.in_flight) < self.concurrency

    def launch(self) -> SlotPlan:
        if not self.can_launch():
            raise RuntimeError("no slot can be launched now")
        target = self.pending.popleft()
        slot = self.next_slot
        self.next_slot += 1
        self.in_flight[slot] = target
        assert self.succeeded + len(self.in_flight) <= self.requested
        return SlotPlan(slot, target)

    def launch_all(self) -> list[SlotPlan]:
        plans = []
        while self.can_launch():
            plans.append(self.launch())
        return plans

    # --- attempts ---------------------------------------------------------------------------------------
    def begin_attempt(self) -> bool:
        """Reserve one item attempt; False (and the job stops) when a cap forbids it."""
        if self.stopped:
            return False
        if self.item_attempts >= self.budget:
            self.stop(STOP_ATTEMPT_BUDGET)
            return False
        if not self.cost_allows_call():
            self.stop(STOP_MAX_COST)
            return False
        self.item_attempts += 1
        return True

    def cost_allows_call(self) -> bool:
        """Spent + (calls in flight + this one) × average call cost must stay within ``max_cost_usd``."""
        if self.max_cost_usd is None:
            return True
        if self.cost_usd >= self.max_cost_usd:
            return False
        avg = self.cost_usd / self.calls if self.calls else 0.0
        return self.cost_usd + (self.calls_in_flight + 1) * avg <= self.max_cost_usd

    def call_started(self) -> None:
        self.calls_in_flight += 1

    def call_finished(self, cost_usd: float) -> None:
        """A provider call came back (success or error): billing."""
        self.calls_in_flight = max(0, self.calls_in_flight - 1)
        self.calls += 1
        self.cost_usd += cost_usd

    def call_abandoned(self) -> None:
        self.calls_in_flight = max(0, self.calls_in_flight - 1)

    def attempt_outcome(self, ok: bool, *, can_fall_back: bool = False) -> bool:
        """One item attempt ended (valid or not); feeds the breaker. When it trips and the job has another model
        to move to (``can_fall_back``), the breaker closes again and True says "move on"; else the job stops."""
        if not self.breaker.record(ok) or self.stopped:
            return False
        if can_fall_back:
            self.breaker.reset()
            return True
        self.stop(STOP_ERROR_RATE)
        return False

    # --- slot ends --------------------------------------------------------------------------------------
    def slot_succeeded(self, slot: int) -> None:
        self.in_flight.pop(slot)
        self.succeeded += 1

    def slot_rejected(self, slot: int) -> None:
        target = self.in_flight.pop(slot)
        self.rejected += 1
        self.pending.appendleft(target)

    def slot_abandoned(self, slot: int) -> None:
        target = self.in_flight.pop(slot, None)
        if target is not None:
            self.pending.appendleft(target)

    # --- ending -----------------------------------------------------------------------------------------
    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason

    def fail(self, code: str, reason: str) -> None:
        if self.fatal is None:
            self.fatal = (code, reason)
        self.stop(STOP_FATAL)

    def cancel(self) -> None:
        self.stop(STOP_CANCELLED)

    @property
    def finished(self) -> bool:
        return not self.in_flight and (self.stopped or not self.pending)

    def outcome(self) -> Outcome:
        if self.stop_reason == STOP_CANCELLED:
            return Outcome(CANCELLED, STOP_CANCELLED)
        if self.fatal is not None:
            return Outcome(FAILED, STOP_FATAL, self.fatal[0], self.fatal[1])
        if self.succeeded >= self.requested:
            return Outcome(COMPLETED, None)
        reason = self.stop_reason or "incomplete"
        if self.succeeded == 0:  # nothing to show for it: the job failed, whatever stopped it
            return self._failed_without_items(reason)
        if reason == STOP_MAX_COST:  # the user's own cap: not an error, a partial result by request
            return Outcome(STOPPED, reason)
        return Outcome(COMPLETED_WITH_ERRORS, reason)

    def _failed_without_items(self, reason: str) -> Outcome:
        if reason == STOP_ERROR_RATE:
            ratio = self.breaker.failure_ratio
            return Outcome(
                FAILED,
                reason,
                "error_rate",
                f"stopped: {ratio:.0%} of the last {self.breaker.calls} attempts failed and no item was valid",
            )
        why = {
            STOP_MAX_COST: f"max_cost_usd ({self.max_cost_usd}) was reached",
            STOP_ATTEMPT_BUDGET: f"the attempt budget ({self.budget} item attempts) was used up",
        }.get(reason, reason)
        return Outcome(
            FAILED,
            reason,
            "no_valid_items",
            f"0 of {self.requested} items succeeded ({self.rejected} rejected): {why}",
        )
