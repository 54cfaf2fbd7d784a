"""The diversity report of a job's round (issue 18 #5), computed when the round ends, over all of the job's accepted
items (``domain/diversity.py``): stored on the job (``diversity``, shown by ``GET /history/{id}``) and carried by
``GenerationCompleted`` (the exporter's appendix).

Only jobs that use the dataset-grade features — a seed dataset, sampler variables or near-duplicate control — get
one (the report reads every item and delays the round's terminal event by about a millisecond per item: plain jobs
do not pay for it), and only rounds that complete (completed, completed_with_errors, stopped); a failed or cancelled
round keeps the report of the round before it, if any. The report reads what is durable, so the writer is drained
first (an empty operation behind the round's last items). At most :data:`MAX_ITEMS` items (the first, by index)
are read (``items_total`` says how many there are), and near-duplicates are looked for among the first
:data:`NEAR_DUP_SAMPLE` (``near_duplicate_sample``). A report that cannot be computed (storage trouble, a bug) is
logged and left out — it never fails the job.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from llmts_common.contracts import GenerationRequested
from llmts_generator.domain.diversity import diversity_report
from llmts_generator.domain.itemvars import ItemVariables
from llmts_generator.domain.ports import GenerationRepository
from llmts_generator.folding import Op
from llmts_generator.writer import JobWriter

log = logging.getLogger("llmts.generator.runner")

__all__ = ["MAX_ITEMS", "report_of", "round_diversity", "wanted"]

MAX_ITEMS: Final = 20_000
NEAR_DUP_SAMPLE: Final = 2_000
PAGE: Final = 1_000
DEFAULT_THRESHOLD: Final = 0.8


def wanted(req: GenerationRequested, variables: ItemVariables | None) -> bool:
    """Whether the job gets a report: it has a seed dataset, sampler variables or near-duplicate control."""
    near = req.template.validation.near_duplicates
    return near is not None or (variables is not None and variables.active)


def _near_dup_settings(req: GenerationRequested) -> tuple[list[str] | None, float]:
    """The fields and threshold of the job's near-duplicate control, the same for the report's count."""
    spec = req.template.validation.near_duplicates
    if spec is None:
        return None, DEFAULT_THRESHOLD
    return (list(spec.fields) or None), spec.threshold


def report_of(
    accepted: Sequence[Mapping[str, Any]],
    req: GenerationRequested,
    targets: Mapping[str, Mapping[str, float]],
    *,
    total: int | None = None,
    rejected_near_duplicates: int = 0,
) -> dict[str, Any]:
    """The report over accepted item documents in index order (``total``: how many the job has in all;
    ``rejected_near_duplicates``: the answers its near-duplicate control turned away)."""
    items = [json.loads(d["data_json"]) for d in accepted]
    sampled = [dict((d.get("provenance") or {}).get("sampled") or {}) for d in accepted]
    fields, threshold = _near_dup_settings(req)
    report = diversity_report(
        items,
        fields=fields,
        sampled=sampled,
        targets=targets,
        threshold=threshold,
        rejected_near_duplicates=rejected_near_duplicates,
        near_dup_sample=NEAR_DUP_SAMPLE,
    )
    report["items_total"] = len(accepted) if total is None else max(total, len(accepted))
    return report


async def _accepted(repo: GenerationRepository, job_id: str, most: int) -> list[dict[str, Any]]:
    """The first ``most`` accepted items in index order, a page at a time."""
    docs: list[dict[str, Any]] = []
    after = -1
    while len(docs) < most:
        page = await repo.items_page(job_id, after=after, limit=min(PAGE, most - len(docs)))
        if not page:
            break
        docs += page
        after = int(page[-1]["index"])
    return docs


async def round_diversity(
    repo: GenerationRepository,
    writer: JobWriter,
    req: GenerationRequested,
    variables: ItemVariables | None,
    status: str,
) -> dict[str, Any] | None:
    """The report of a round ending with ``status`` (None for plain jobs, failed / cancelled rounds, or when it
    fails)."""
    if status not in ("completed", "completed_with_errors", "stopped") or not wanted(req, variables):
        return None
    try:
        await writer.submit(Op())  # everything decided so far is durable behind it
        accepted = await _accepted(repo, req.job_id, MAX_ITEMS)
        job = await repo.get_job(req.job_id, {"counts": 1})
        counts = (job or {}).get("counts") or {}
        targets = variables.category_targets() if variables is not None else {}
        return await asyncio.to_thread(
            report_of,
            accepted,
            req,
            targets,
            total=int(counts.get("succeeded", len(accepted))),
            rejected_near_duplicates=int(counts.get("near_duplicates", 0)),
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.warning("job %s: no diversity report: %s", req.job_id, exc, exc_info=True)
        return None
