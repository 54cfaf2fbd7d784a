"""An item's ``inputs``: the task row, the task's number and the item's number within it, and the variables."""

from __future__ import annotations

from llmts_generator.domain.tasks import expand_tasks, item_inputs


def test_inputs_follow_the_task_plan() -> None:
    plan = expand_tasks([{"topic": "a", "count": 2}, {"topic": "b"}])
    assert item_inputs(plan, 1) == {
        "target": 1,
        "task": 0,
        "task_index": 1,
        "row": {"topic": "a", "count": 2},
    }
    assert item_inputs(plan, 2, {"lang": "ru"}) == {
        "target": 2,
        "task": 1,
        "task_index": 0,
        "row": {"topic": "b"},
        "variables": {"lang": "ru"},
    }
    assert item_inputs(plan, 4)["task"] == 0  # an explicit count beyond the plan repeats it


def test_without_tasks_only_the_target() -> None:
    assert item_inputs([], 7) == {"target": 7, "task": 0, "task_index": 7, "row": {}}
