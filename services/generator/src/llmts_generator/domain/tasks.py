"""From a job's tasks to the prompt context of each target (llm-data-gen style tasks with ``count``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

TaskRef = tuple[dict[str, Any], int, int]  # (task variables, task number, index within the task)


def expand_tasks(tasks: Sequence[Mapping[str, Any]]) -> list[TaskRef]:
    """One entry per item the tasks ask for: a task with ``count: k`` (default 1) yields k entries."""
    plan: list[TaskRef] = []
    for number, task in enumerate(tasks):
        raw = task.get("count", 1)
        count = raw if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0 else 1
        variables = dict(task)
        plan.extend((variables, number, i) for i in range(count))
    return plan


def count_from_tasks(tasks: Sequence[Mapping[str, Any]]) -> int:
    return len(expand_tasks(tasks))


def item_inputs(
    plan: Sequence[TaskRef], target: int, variables: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What target ``target`` is generated from, stored with its item so a result joins back to its input:
    ``{target, task, task_index, row}`` (the wanted item's number, the task's number, the item's number within the
    task, the task row) and ``variables`` (the request's, for every item) when there are any."""
    row, number, index = task_for_target(plan, target)
    inputs: dict[str, Any] = {"target": target, "task": number, "task_index": index, "row": row}
    if variables:
        inputs["variables"] = dict(variables)
    return inputs


def task_for_target(plan: Sequence[TaskRef], target: int) -> TaskRef:
    """The task of target ``target``; with an explicit count larger than the plan, the plan repeats."""
    if not plan:
        return ({}, 0, target)
    return plan[target % len(plan)]
