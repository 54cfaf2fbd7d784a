"""The items of a preview (issue 18): for items ``index`` .. ``index + items - 1`` — the sampled values (drawn with
the request's ``sample_seed``, 0 by default; a job draws with its own seed), the seed row, the rendered top-level
prompts and every stage's prompts; and the judge's messages for a placeholder item.

Variables of an item, later wins: the template's plain defaults, the seed row, the sampled values, the task's fields,
the request's variables. The seed row of item ``i`` is the one a job whose ``seed`` is the preview's ``sample_seed``
gives it (``llmts_templating.seeding.row_for`` with the template's ``seed.sampling``, the generator's function):
``ordered`` is row ``i mod rows`` whatever the seed; ``shuffle`` and ``with_replacement`` follow the seed.
Stages render with placeholder outputs of the stages before them (``llmts_templating.placeholders``: example
values from each stage's schema), since the preview calls no model.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from llmts_api.template_document import MAIN_STAGE
from llmts_api.templates import PreviewRequest
from llmts_common.errors import Unprocessable
from llmts_templates.domain.document import TemplateDocument
from llmts_templates.domain.ports import DatasetCatalog
from llmts_templating import RenderedPrompts, RenderError, build_context
from llmts_templating.judge import JudgeError, JudgeRules
from llmts_templating.placeholders import stage_placeholders as placeholders
from llmts_templating.pool import RenderPool
from llmts_templating.samplers import SamplerError, SamplerPlan, is_sampler_spec
from llmts_templating.seeding import row_for

PREVIEW_JOB_ID = "preview"


def task_at(doc: TemplateDocument, req: PreviewRequest, index: int) -> tuple[dict[str, Any] | None, int]:
    """(task fields, task_index) of item ``index``."""
    if isinstance(req.task, dict):
        return req.task, index
    if isinstance(req.task, int):
        if not 0 <= req.task < len(doc.tasks):
            raise Unprocessable(
                f"task {req.task} does not exist (the template has {len(doc.tasks)})", code="invalid_task"
            )
        return doc.tasks[req.task], index
    if not doc.tasks:
        return None, index
    start = 0
    for task in doc.tasks:
        raw = task.get("count", 1)
        n = raw if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0 else 1
        if index < start + n:
            return task, index - start
        start += n
    raise Unprocessable(f"index {index} is beyond the template's tasks ({start} items)", code="invalid_index")


@dataclass(frozen=True)
class SeedRow:
    """A previewed item's seed row: its number in the dataset (0-based) and its values (reduced to ``columns``)."""

    number: int
    values: dict[str, Any]


async def seed_rows(
    doc: TemplateDocument,
    *,
    user_id: str,
    datasets: DatasetCatalog | None,
    first: int,
    count: int,
    seed: int,
) -> list[SeedRow | None] | None:
    """The seed row of each previewed item, as a job with ``seed`` picks it (``None`` without a seed, an item
    ``None`` for an empty dataset); the dataset must be the caller's."""
    if doc.seed is None or datasets is None:
        return None
    dataset = await datasets.get(doc.seed.dataset_id)
    if dataset is None or dataset.get("owner_id") != user_id:
        raise Unprocessable(
            "seed.dataset_id: the template's seed dataset is not one of yours (or was deleted)",
            details=[
                {"loc": ["body", "seed", "dataset_id"], "msg": "dataset not found", "type": "seed",
                 "path": "seed.dataset_id"}
            ],
        )  # fmt: skip
    total = int(dataset.get("rows") or 0)
    rows: list[SeedRow | None] = []
    columns = doc.seed.columns
    for index in range(first, first + count):
        if not total:
            rows.append(None)
            continue
        number = row_for(doc.seed.sampling, total, seed, index)
        found = await datasets.rows(doc.seed.dataset_id, number, 1)
        row = found[0] if found else {}
        rows.append(SeedRow(number, {k: v for k, v in row.items() if columns is None or k in columns}))
    return rows


def _plan(doc: TemplateDocument) -> SamplerPlan:
    try:
        return SamplerPlan.from_variables(doc.variables)
    except SamplerError as err:
        raise Unprocessable(err.message, code="render_error", details={"path": err.path}) from None


async def _render(renderer: RenderPool, prompts: Any, context: dict[str, Any], path: str) -> RenderedPrompts:
    try:
        return await renderer.render_prompts(prompts.system, prompts.user, context)
    except RenderError as err:
        raise Unprocessable(
            f"the template does not render: {err.message}",
            code="render_error",
            details={**err.to_dict(), "path": path},
        ) from None


def stage_placeholders(doc: TemplateDocument) -> dict[str, Any]:
    """``main`` and each stage's placeholder output, by stage name."""
    return placeholders(doc.json_schema, doc.output.format, ((s.name, s.json_schema) for s in doc.stages))


async def _stages(
    doc: TemplateDocument, context: dict[str, Any], renderer: RenderPool, outputs: dict[str, Any]
) -> list[dict[str, Any]]:
    out = []
    seen: dict[str, Any] = {MAIN_STAGE: outputs[MAIN_STAGE]}
    for i, stage in enumerate(doc.stages):
        rendered = await _render(renderer, stage.prompts, {**context, **seen}, f"stages[{i}].prompts")
        out.append({"name": stage.name, "rendered": {"system": rendered.system, "user": rendered.user}})
        seen[stage.name] = outputs[stage.name]
    return out


async def preview_items(
    doc: TemplateDocument,
    req: PreviewRequest,
    *,
    renderer: RenderPool,
    now: datetime,
    rows: list[SeedRow | None] | None,
) -> list[dict[str, Any]]:
    plan = _plan(doc)
    plain = {k: v for k, v in doc.variables.items() if not is_sampler_spec(v)}
    outputs = stage_placeholders(doc)
    items = []
    for k in range(req.items):
        index = req.index + k
        task, task_index = task_at(doc, req, index)
        seed_row = rows[k] if rows is not None else None
        row = seed_row.values if seed_row is not None else ({} if rows is not None else None)
        base = {**plain, **(row or {}), **(task or {}), **req.variables}
        try:
            sampled = await asyncio.to_thread(plan.draw, req.sample_seed, index, base) if plan else {}
        except SamplerError as err:
            raise Unprocessable(err.message, code="render_error", details={"path": err.path}) from None
        context = build_context(
            index=index,
            task_index=task_index,
            job_id=PREVIEW_JOB_ID,
            now=now,
            template_variables={**plain, **(row or {}), **sampled},
            task=task,
            request_variables=req.variables,
        )
        rendered = await _render(renderer, doc.prompts, context, "prompts")
        items.append(
            {
                "index": index,
                "task_index": task_index,
                "task": task,
                "sampled": sampled,
                "seed_row": row,
                "seed_row_index": seed_row.number if seed_row is not None else None,
                "rendered": {"system": rendered.system, "user": rendered.user},
                "stages": await _stages(doc, context, renderer, outputs),
                "inputs": {**(row or {}), **sampled, **(task or {}), **req.variables},
            }
        )
    return items


async def judge_preview(doc: TemplateDocument, item: dict[str, Any]) -> dict[str, Any] | None:
    """The judge's messages for a placeholder item (the top-level placeholder with each stage's under its name),
    generated for ``item``'s inputs (seed row, sampled values, task, request variables)."""
    judge = doc.judge
    if judge is None:
        return None
    try:
        rules = await asyncio.to_thread(JudgeRules.build, judge.rubric, judge.scores, judge.accept)
    except JudgeError as err:
        raise Unprocessable(err.message, code="render_error", details={"path": err.path}) from None
    outputs = stage_placeholders(doc)
    main = outputs.pop(MAIN_STAGE)
    placeholder = {**main, **outputs} if isinstance(main, dict) else main
    inputs = {k: v for k, v in item["inputs"].items() if k != "count"}
    return {
        "model": judge.model.model_dump(mode="json"),
        "placeholder_item": placeholder,
        "messages": rules.messages(placeholder, inputs),
        "response_schema": rules.schema(),
    }
