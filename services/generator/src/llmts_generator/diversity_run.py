"""The diversity report of a job's round (issue 18 #5), computed when the round ends, over all of the job's accepted
items (``domain/diversity.py``): stored on the job (``diversity``, shown by ``GET /history/{id}``) and carried by
``GenerationCompleted`` (the exporter's appendix).

Only rounds that complete (completed, completed_with_errors, stopped) get one; a failed or cancelled round keeps
the report of the round before it, if any. The report reads what is durable, so the writer is drained first (an
empty operation behind the round's last items). At most :data:`MAX_ITEMS` items (the first, by index) are read:
the report of a larger job says so (``items_total``). A report that cannot be computed (storage trouble, a bug) is
logged and left out — it never fails or holds up the job.
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

__all__ = ["MAX_ITEMS", "report_of", "round_diversity"]

MAX_ITEMS: Final = 20_000
DEFAULT_THRESHOLD: Final = 0.8


def _near_dup_settings(req: GenerationRequested) -> tuple[list[str] | None, float]:
    """The fields and threshold of the job's near-duplicate control, the same for the report's count."""
    spec = getattr(req.template.validation, "near_duplicates", None)
    if spec is None:
        return None, DEFAULT_THRESHOLD
    fields = list(getattr(spec, "fields", []) or [])
    return (fields or None), float(getattr(spec, "threshold", DEFAULT_THRESHOLD))


def report_of(
    docs: Sequence[Mapping[str, Any]],
    req: GenerationRequested,
    targets: Mapping[str, Mapping[str, float]],
    *,
    max_items: int = MAX_ITEMS,
) -> dict[str, Any]:
    """The report over the stored item documents of a job (accepted ones in index order; rejected ones only
    count the near-duplicates turned away)."""
    accepted = sorted((d for d in docs if d.get("status") == "accepted"), key=lambda d: int(d["index"]))
    rejected_near = sum(
        1 for d in docs if d.get("status") == "rejected" and d.get("reason") == "near_duplicate"
    )
    kept = accepted[:max_items]
    items = [json.loads(d["data_json"]) for d in kept]
    sampled = [dict((d.get("provenance") or {}).get("sampled") or {}) for d in kept]
    fields, threshold = _near_dup_settings(req)
    report = diversity_report(
        items,
        fields=fields,
        sampled=sampled,
        targets=targets,
        threshold=threshold,
        rejected_near_duplicates=rejected_near,
    )
    report["items_total"] = len(accepted)
    return report


async def round_diversity(
    repo: GenerationRepository,
    writer: JobWriter,
    req: GenerationRequested,
    variables: ItemVariables | None,
    status: str,
) -> dict[str, Any] | None:
    """The report of a round ending with ``status`` (None for failed / cancelled rounds or when it fails)."""
    if status not in ("completed", "completed_with_errors", "stopped"):
        return None
    try:
        await writer.submit(Op())  # everything decided so far is durable behind it
        docs = await repo.stored_items(req.job_id)  # by id: no scan of every job's items (issue 14)
        targets = variables.category_targets() if variables is not None else {}
        return await asyncio.to_thread(report_of, docs, req, targets)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.warning("job %s: no diversity report: %s", req.job_id, exc, exc_info=True)
        return None
