"""Per-item variables of a job (issue 18 #1–#2): each target's seed-dataset row and its sampled values.

- The seed dataset is the job's ``dataset`` (a job-level override) or else the template's ``seed``; target ``i``
  gets row :func:`~llmts_templating.seeding.row_for` ``(sampling, rows, job seed, i)``, reduced to the seed's
  ``columns`` when it names some.
- Sampler variables (``llmts_templating.samplers``) are drawn with the job seed and the target: ``draw(seed, i)``.

Both are pure functions of (job seed, target), so a re-run with the same seed, a resumed job and an extension (new
targets, new values) give every target the same values again; sampled values are drawn, not asked of a model, so
they cost no tokens. Context layers, later wins: the template's plain variables, the seed row, the sampled values,
the task's fields, the request's variables (as the templates service's preview).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmts_common.contracts import GenerationRequested
from llmts_common.contracts.common_models import SeedRef
from llmts_generator.domain.tasks import expand_tasks, task_for_target
from llmts_templating.samplers import SamplerPlan, is_sampler_spec
from llmts_templating.seeding import row_for

__all__ = [
    "DatasetGone",
    "DatasetsUnavailable",
    "ItemDraw",
    "ItemVariables",
    "SeedRows",
    "plain_variables",
]


class DatasetGone(Exception):
    """The dataset does not exist (deleted) or is not the job's user's: the job cannot go on with it."""


class DatasetsUnavailable(Exception):
    """The service holding the datasets did not answer: transient, the caller retries later."""


class SeedRows(Protocol):
    """Rows of a user's seed datasets (``adapters.datasets.DatasetRows``)."""

    async def total(self, user_id: str, dataset_id: str) -> int: ...

    async def row(self, user_id: str, dataset_id: str, index: int) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ItemDraw:
    """One target's per-item variables: its seed row (number and values) and its sampled values."""

    row_number: int | None = None
    row: dict[str, Any] | None = None
    sampled: dict[str, Any] = field(default_factory=dict)

    def layer(self) -> dict[str, Any]:
        """The variables this draw adds to the target's context (seed row, then sampled values)."""
        return {**(self.row or {}), **self.sampled}


NO_DRAW = ItemDraw()


def plain_variables(variables: Mapping[str, Any]) -> dict[str, Any]:
    """A template's variables without its sampler specs (those are drawn per item, never rendered as specs)."""
    return {k: v for k, v in variables.items() if not is_sampler_spec(v)}


class ItemVariables:
    """The seed dataset and samplers of one job: :meth:`open` once, then :meth:`draw` per target."""

    def __init__(self, req: GenerationRequested, job_seed: int, rows: SeedRows | None) -> None:
        self.seed_ref: SeedRef | None = req.dataset or req.template.seed
        self.plan = SamplerPlan.from_variables(req.template.variables)  # SamplerError: invalid_template
        self._plain = plain_variables(req.template.variables)
        self._request_variables = dict(req.variables)
        self._tasks = expand_tasks(req.tasks or req.template.tasks)
        self._user_id = req.user_id
        self._job_seed = job_seed
        self._rows = rows
        self._total = 0

    @property
    def active(self) -> bool:
        return self.seed_ref is not None or bool(self.plan)

    @property
    def dataset_id(self) -> str | None:
        return self.seed_ref.dataset_id if self.seed_ref is not None else None

    async def open(self) -> None:
        """Check the seed dataset and learn its row count: ``DatasetGone`` (deleted, another user's, no rows, no
        way to read it), ``DatasetsUnavailable`` (transient)."""
        if self.seed_ref is None:
            return
        if self._rows is None:
            raise DatasetGone("seed datasets cannot be read by this generator (TEMPLATES_URL not set)")
        self._total = await self._rows.total(self._user_id, self.seed_ref.dataset_id)
        if self._total <= 0:
            raise DatasetGone(f"seed dataset {self.seed_ref.dataset_id} has no rows")

    async def draw(self, target: int) -> ItemDraw:
        """Target ``target``'s seed row and sampled values (``DatasetGone``, ``DatasetsUnavailable``,
        ``SamplerError`` from an expression that fails for this item)."""
        if not self.active:
            return NO_DRAW
        number: int | None = None
        row: dict[str, Any] | None = None
        ref = self.seed_ref
        if ref is not None and self._rows is not None:
            number = row_for(ref.sampling, self._total, self._job_seed, target)
            full = await self._rows.row(self._user_id, ref.dataset_id, number)
            row = {k: v for k, v in full.items() if ref.columns is None or k in ref.columns}
        if not self.plan:
            return ItemDraw(number, row, {})
        # what expressions see: the item's other variables, in the context's order (the templates preview's too)
        task = task_for_target(self._tasks, target)[0]
        base = {**self._plain, **(row or {}), **task, **self._request_variables}
        return ItemDraw(number, row, self.plan.draw(self._job_seed, target, base))

    def category_targets(self) -> dict[str, dict[str, float]]:
        """Each category sampler's target share per value (the diversity report compares them)."""
        return self.plan.targets() if self.plan else {}
