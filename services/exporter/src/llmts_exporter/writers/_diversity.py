"""The diversity appendix (issue 18 #5), by the ``diversity`` export option: the job's diversity report (computed by
the generator when the job's latest round completed, carried by ``GenerationCompleted.diversity``).

* json: the envelope form (``{"meta": …, "items": […], "diversity": {…}}``), even without ``envelope``;
* xml: the envelope form too, ``<diversity>`` after ``<items>`` (the report as nested elements);
* xlsx: a ``diversity`` sheet (label, value rows);
* md/html/txt: a "Diversity" section after the items;
* parquet: the file's key-value metadata ``llmts.diversity`` (JSON);
* csv, jsonl and pdf: not included (a csv/jsonl file is its rows; ``GET /history/{id}`` shows the report).

A job without a report (older generators, a failed or cancelled job) gets no appendix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._model import ExportMeta, ExportOptions

TITLE = "Diversity"
SHEET = "diversity"
KEY = "diversity"
METADATA_KEY = "llmts.diversity"

_FIGURES = (
    ("items", "Items"),
    ("items_total", "Accepted items"),
    ("distinct_1", "Distinct-1"),
    ("distinct_2", "Distinct-2"),
    ("near_duplicate_threshold", "Near-duplicate threshold"),
    ("near_duplicate_rate", "Near-duplicate rate"),
    ("near_duplicates_rejected", "Near-duplicates rejected"),
)


def report(meta: ExportMeta, options: ExportOptions) -> Mapping[str, Any] | None:
    """The report to append, or None (not asked for, or the job has none)."""
    return meta.diversity if options.diversity and meta.diversity else None


def rows(diversity: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Readable (label, value) rows: the figures, then per sampled category each value's count, share and target,
    and the largest deviation."""
    out = [(label, _num(diversity[key])) for key, label in _FIGURES if diversity.get(key) is not None]
    fields = diversity.get("fields")
    if fields:
        out.append(("Compared fields", ", ".join(map(str, fields))))
    for column, entry in (diversity.get("categories") or {}).items():
        for value, fig in (entry.get("values") or {}).items():
            out.append(
                (
                    f"{column} = {value}",
                    f"count {fig.get('count')} · share {_num(fig.get('share'))} · target {_num(fig.get('target'))}",
                )
            )
        out.append((f"{column}: max deviation, pp", _num(entry.get("max_dev_pp"))))
    return out


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") or "0"
    return str(value)
