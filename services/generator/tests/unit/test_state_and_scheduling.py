"""Job state machine and slot scheduling (exactly N, no surplus, caps)."""

from __future__ import annotations

import random

import pytest

from llmts_generator.domain import state
from llmts_generator.domain.breaker import CircuitBreaker
from llmts_generator.domain.scheduling import (
    STOP_ATTEMPT_BUDGET,
    STOP_ERROR_RATE,
    STOP_MAX_COST,
    Scheduler,
    attempt_budget,
)
from llmts_generator.domain.tasks import count_from_tasks, expand_tasks, task_for_target


class TestStateMachine:
    def test_happy_path(self) -> None:
        assert state.transition("queued", "running") == "running"
        assert state.transition("running", "completed") == "completed"

    @pytest.mark.parametrize("target", ["completed", "completed_with_errors", "failed", "cancelled"])
    def test_running_can_end_any_way(self, target: str) -> None:
        assert state.can_transition("running", target)

    @pytest.mark.parametrize(
        ("current", "target"),
        [
            ("completed", "running"),
            ("cancelled", "running"),
            ("failed", "completed"),
            ("queued", "completed"),
        ],
    )
    def test_illegal(self, current: str, target: str) -> None:
        with pytest.raises(state.IllegalTransition):
            state.transition(current, target)

    def test_queued_can_be_cancelled_or_fail_before_start(self) -> None:
        assert state.can_transition("queued", "cancelled")
        assert state.can_transition("queued", "failed")
        assert sorted(state.sources_of("cancelled")) == ["queued", "running"]

    def test_terminal(self) -> None:
        assert all(
            state.is_terminal(s) for s in ("completed", "completed_with_errors", "failed", "cancelled")
        )
        assert not state.is_terminal("running")


def simulate(
    n: int, concurrency: int, p_valid: float, max_attempts: int, seed: int = 1
) -> tuple[Scheduler, int]:
    """Drive the scheduler like the runner does, with random outcomes and random completion order."""
    rng = random.Random(seed)
    sched = Scheduler(requested=n, concurrency=concurrency, budget=attempt_budget(n, max_attempts, 3.0))
    attempts_of: dict[int, int] = {}
    max_outstanding = 0
    while not sched.finished:
        for plan in sched.launch_all():
            attempts_of[plan.slot] = 0
        max_outstanding = max(max_outstanding, sched.succeeded + len(sched.in_flight))
        assert len(sched.in_flight) <= concurrency
        slot = rng.choice(list(sched.in_flight))
        if not sched.begin_attempt():
            sched.slot_abandoned(slot)
            continue
        attempts_of[slot] += 1
        ok = rng.random() < p_valid
        sched.attempt_outcome(ok)
        if ok:
            sched.slot_succeeded(slot)
        elif attempts_of[slot] >= max_attempts:
            sched.slot_rejected(slot)
    return sched, max_outstanding


class TestScheduler:
    @pytest.mark.parametrize(("n", "c"), [(1, 8), (10, 3), (100, 32), (37, 37)])
    def test_exactly_n_and_never_a_surplus(self, n: int, c: int) -> None:
        sched, max_outstanding = simulate(n, c, p_valid=0.6, max_attempts=3)
        assert sched.succeeded == n
        assert max_outstanding <= n  # succeeded + in flight never exceeds N
        assert sched.outcome().status == "completed"

    def test_rejected_targets_are_regenerated(self) -> None:
        sched, _ = simulate(20, 4, p_valid=0.3, max_attempts=2, seed=7)
        assert sched.succeeded == 20
        assert sched.rejected > 0

    def test_launch_respects_concurrency_and_remaining(self) -> None:
        sched = Scheduler(requested=5, concurrency=3, budget=100)
        plans = sched.launch_all()
        assert [p.target for p in plans] == [0, 1, 2]
        assert [p.slot for p in plans] == [0, 1, 2]
        sched.slot_succeeded(0)
        sched.slot_succeeded(1)
        plans = sched.launch_all()
        assert [p.target for p in plans] == [3, 4]
        sched.slot_succeeded(2)
        assert sched.launch_all() == []  # 3 done + 2 in flight = 5 = N: nothing more

    def test_rejected_target_goes_first(self) -> None:
        sched = Scheduler(requested=3, concurrency=1, budget=100)
        (p,) = sched.launch_all()
        sched.slot_rejected(p.slot)
        (q,) = sched.launch_all()
        assert q.target == p.target
        assert q.slot == p.slot + 1

    def test_resume_skips_done_targets(self) -> None:
        sched = Scheduler(requested=5, concurrency=8, budget=100, done_targets=[0, 2], next_slot=9)
        assert sched.succeeded == 2
        plans = sched.launch_all()
        assert [p.target for p in plans] == [1, 3, 4]
        assert plans[0].slot == 9

    def test_attempt_budget(self) -> None:
        sched = Scheduler(requested=2, concurrency=2, budget=3)
        sched.launch_all()
        assert sched.begin_attempt()
        assert sched.begin_attempt()
        assert sched.begin_attempt()
        assert not sched.begin_attempt()
        assert sched.stop_reason == STOP_ATTEMPT_BUDGET
        sched.slot_succeeded(0)
        sched.slot_abandoned(1)
        assert sched.finished
        out = sched.outcome()
        assert (out.status, out.stop_reason) == ("completed_with_errors", STOP_ATTEMPT_BUDGET)

    def test_budget_formula(self) -> None:
        assert attempt_budget(10, 3) == 30
        assert attempt_budget(10, 1, 0.5) == 10  # never below N

    def test_max_cost(self) -> None:
        sched = Scheduler(requested=10, concurrency=2, budget=100, max_cost_usd=0.01)
        sched.launch_all()
        assert sched.begin_attempt()
        sched.call_started()
        sched.call_finished(0.004)
        assert sched.begin_attempt()  # 0.004 + 1 × 0.004 ≤ 0.01
        sched.call_started()
        sched.call_started()
        # spent 0.004, two in flight at avg 0.004 → 0.004 + 3×0.004 > 0.01
        assert not sched.begin_attempt()
        assert sched.stop_reason == STOP_MAX_COST

    def test_max_cost_spent_already(self) -> None:
        sched = Scheduler(requested=10, concurrency=2, budget=100, max_cost_usd=0.01, cost_usd=0.01, calls=3)
        assert not sched.begin_attempt()
        assert sched.stop_reason == STOP_MAX_COST

    def test_error_rate_stops_and_fails_without_items(self) -> None:
        sched = Scheduler(
            requested=5,
            concurrency=5,
            budget=1000,
            breaker=CircuitBreaker(window=10, min_calls=10, threshold=0.9),
        )
        plans = sched.launch_all()
        for _ in range(10):
            sched.attempt_outcome(False)
        assert sched.stop_reason == STOP_ERROR_RATE
        assert not sched.can_launch()
        for p in plans:
            sched.slot_abandoned(p.slot)
        out = sched.outcome()
        assert out.status == "failed"
        assert out.code == "error_rate"

    def test_error_rate_with_some_items_completes_with_errors(self) -> None:
        sched = Scheduler(
            requested=5,
            concurrency=5,
            budget=1000,
            breaker=CircuitBreaker(window=10, min_calls=10, threshold=0.9),
        )
        plans = sched.launch_all()
        sched.attempt_outcome(True)
        sched.slot_succeeded(plans[0].slot)
        for _ in range(10):
            sched.attempt_outcome(False)
        for p in plans[1:]:
            sched.slot_abandoned(p.slot)
        assert sched.outcome().status == "completed_with_errors"

    def test_cancel_and_fatal(self) -> None:
        sched = Scheduler(requested=5, concurrency=5, budget=10)
        sched.launch_all()
        sched.fail("insufficient_credits", "no money")
        sched.cancel()  # first reason wins
        out = sched.outcome()
        assert (out.status, out.code) == ("failed", "insufficient_credits")
        s2 = Scheduler(requested=5, concurrency=5, budget=10)
        s2.cancel()
        assert s2.outcome().status == "cancelled"


class TestBreaker:
    def test_needs_min_calls(self) -> None:
        b = CircuitBreaker(window=10, min_calls=5, threshold=0.8)
        for _ in range(4):
            assert not b.record(False)
        assert b.record(False)

    def test_window_slides(self) -> None:
        b = CircuitBreaker(window=4, min_calls=4, threshold=0.75)
        for ok in (False, False, True, True, True, True):
            b.record(ok)
        assert b.failure_ratio == 0.0
        assert not b.tripped

    def test_stays_open(self) -> None:
        b = CircuitBreaker(window=4, min_calls=2, threshold=0.5)
        b.record(False)
        b.record(False)
        assert b.tripped
        b.record(True)
        assert b.tripped


class TestTasks:
    def test_expand_with_counts(self) -> None:
        plan = expand_tasks([{"theme": "a", "count": 2}, {"theme": "b"}])
        assert [(t["theme"], n, i) for t, n, i in plan] == [("a", 0, 0), ("a", 0, 1), ("b", 1, 0)]
        assert count_from_tasks([{"count": 3}, {"count": 0}, {}]) == 4

    def test_target_cycles(self) -> None:
        plan = expand_tasks([{"x": 1}, {"x": 2}])
        assert task_for_target(plan, 3)[0] == {"x": 2}
        assert task_for_target([], 4) == ({}, 0, 4)
