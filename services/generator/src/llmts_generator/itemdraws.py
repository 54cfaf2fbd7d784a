"""Per-item variables in a running job (issue 18 #1–#2): opening the job's seed dataset and samplers, drawing a
target's seed row and sampled values before its prompts are rendered, and the item's provenance.

Errors, decided here so the runner and the slots only call in:

- the seed dataset is deleted, another user's or empty → the job fails with ``dataset_not_found``;
- a sampler spec that does not build, or an expression that fails for an item → ``invalid_template`` /
  ``render_error`` (as a prompt that does not render);
- the templates service (which holds the datasets) does not answer → transient: at the job's start it is retried
  for :data:`OPEN_PATIENCE_S`, then the runner gives the job up without a terminal state (another run takes it
  when the lease expires); in a slot the draw is retried with backoff while the job runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from llmts_common.contracts import GenerationRequested
from llmts_common.errors import NotFound, ServiceUnavailable, Unprocessable
from llmts_generator.domain.itemvars import (
    DatasetGone,
    DatasetsUnavailable,
    ItemDraw,
    ItemVariables,
    SeedRows,
)
from llmts_generator.domain.requests import RenderedItem
from llmts_generator.domain.scheduling import Scheduler
from llmts_generator.jobloop import JobAborted
from llmts_templating.samplers import SamplerError

log = logging.getLogger("llmts.generator.runner")

__all__ = [
    "JobInputError",
    "dataset_of",
    "draw_item",
    "draw_items",
    "item_provenance",
    "open_item_variables",
    "preview_draws",
]

OPEN_PATIENCE_S: Final = 30.0
RETRY_FIRST_S: Final = 0.25
RETRY_MAX_S: Final = 5.0
DATASET_NOT_FOUND: Final = "dataset_not_found"


@dataclass(frozen=True)
class JobInputError(Exception):
    """The job's inputs cannot be used: it fails with ``code``."""

    code: str
    reason: str


async def open_item_variables(
    req: GenerationRequested, seed: int, rows: SeedRows | None, *, patience_s: float = OPEN_PATIENCE_S
) -> ItemVariables:
    """The job's seed dataset and samplers, checked (``JobInputError``); ``JobAborted`` when the templates service
    stays away for ``patience_s``."""
    try:
        variables = ItemVariables(req, seed, rows)
    except SamplerError as exc:
        raise JobInputError("invalid_template", f"{exc.path}: {exc.message}"[:1000]) from None
    delay, waited = RETRY_FIRST_S, 0.0
    while True:
        try:
            await variables.open()
            return variables
        except DatasetGone as exc:
            raise JobInputError(DATASET_NOT_FOUND, str(exc)[:1000]) from None
        except DatasetsUnavailable as exc:
            if waited >= patience_s:
                raise JobAborted(f"seed dataset unreadable for {waited:.0f} s: {exc}") from exc
            log.warning("job %s: seed dataset not readable now (%s), retrying", req.job_id, exc)
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, RETRY_MAX_S)


async def draw_item(variables: ItemVariables | None, target: int, sched: Scheduler) -> ItemDraw | None:
    """``target``'s seed row and sampled values; None when the job failed because of them (``sched.fail``) or
    stopped while the templates service was away."""
    if variables is None or not variables.active:
        return ItemDraw()
    delay = RETRY_FIRST_S
    while not sched.stopped:
        try:
            return await variables.draw(target)
        except DatasetGone as exc:
            sched.fail(DATASET_NOT_FOUND, str(exc)[:1000])
        except SamplerError as exc:
            sched.fail("render_error", f"sampler {exc.path}: {exc.message}"[:1000])
        except DatasetsUnavailable as exc:
            log.warning("target %d: seed row not readable now (%s), retrying", target, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)
    return None


async def draw_items(
    variables: ItemVariables | None, targets: Sequence[int], sched: Scheduler
) -> list[ItemDraw] | None:
    """:func:`draw_item` for several targets (a batch job's lines); None when the job failed or stopped."""
    draws = []
    for target in targets:
        draw = await draw_item(variables, target, sched)
        if draw is None:
            return None
        draws.append(draw)
    return draws


def dataset_of(variables: ItemVariables | None) -> str | None:
    """The job's seed dataset id, if any (for :func:`item_provenance`)."""
    return variables.dataset_id if variables is not None else None


def item_provenance(
    rendered: RenderedItem,
    attempt: Mapping[str, Any],
    attempts: int,
    *,
    dataset_id: str | None,
    judge: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """How an accepted item was made (stored on the item, in its event and in the result): task index, seed row,
    sampled values, model, provider, item attempts, and the judge's scores when a judge scored it."""
    draw = rendered.draw
    scores = judge.get("scores") if judge is not None else None
    return {
        "task_index": rendered.task_index,
        "dataset_id": dataset_id if draw.row_number is not None else None,
        "seed_row": draw.row_number,
        "sampled": dict(draw.sampled),
        "model": attempt.get("model"),
        "provider": attempt.get("provider"),
        "attempts": attempts,
        "judge": dict(scores) if isinstance(scores, Mapping) else None,
    }


async def preview_draws(
    req: GenerationRequested, seed: int, rows: SeedRows | None, targets: Sequence[int]
) -> list[ItemDraw]:
    """The seed rows and sampled values of a preview's first items, as the job would draw them with ``seed``
    (404 ``dataset_not_found``, 422 ``render_error``, 503 while the templates service is away)."""
    try:
        variables = ItemVariables(req, seed, rows)
        await variables.open()
        return [await variables.draw(t) for t in targets]
    except SamplerError as exc:
        raise Unprocessable(exc.message, code="render_error", details={"path": exc.path}) from None
    except DatasetGone as exc:
        raise NotFound(str(exc), code=DATASET_NOT_FOUND, details={"field": "dataset"}) from None
    except DatasetsUnavailable as exc:
        raise ServiceUnavailable(f"seed datasets cannot be read now: {exc}") from None
