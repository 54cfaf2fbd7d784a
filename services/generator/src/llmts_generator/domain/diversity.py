"""The per-job diversity report (issue 18 #5): how varied the accepted items are.

- ``distinct_1`` / ``distinct_2``: distinct word unigrams / bigrams over all of them, divided by their total (the usual
  distinct-n of text generation; 1.0 = no repeated word, → 0 = the same words again and again);
- ``near_duplicate_rate``: the share of accepted items that still have a near-duplicate among the accepted ones
  (after the filter; pairs found by the same MinHash LSH as the filter), and ``near_duplicates_rejected``: how many
  answers the filter turned away on the way;
- ``categories``: for each category sampler, each value's count and share among the accepted items next to its target
  share, and the largest deviation in percentage points.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from llmts_generator.domain.neardup import NearDupIndex, item_text

__all__ = ["category_report", "distinct_n", "diversity_report"]


def distinct_n(texts: Sequence[str], n: int) -> float:
    grams: Counter[tuple[str, ...]] = Counter()
    for text in texts:
        words = [w.lower() for w in text.split()]
        grams.update(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    total = sum(grams.values())
    return round(len(grams) / total, 4) if total else 0.0


def category_report(
    sampled: Sequence[Mapping[str, Any]], targets: Mapping[str, Mapping[str, float]]
) -> dict[str, Any]:
    """Per category column: value → {count, share, target}; ``max_dev_pp``: the largest |share − target| in points."""
    report: dict[str, Any] = {}
    total = len(sampled)
    for column, shares in targets.items():
        counts = Counter(str(row.get(column)) for row in sampled if column in row)
        values = {
            value: {
                "count": counts.get(value, 0),
                "share": round(counts.get(value, 0) / total, 4) if total else 0.0,
                "target": round(target, 4),
            }
            for value, target in shares.items()
        }
        worst = max((abs(v["share"] - v["target"]) for v in values.values()), default=0.0)
        report[column] = {"values": values, "max_dev_pp": round(worst * 100, 2)}
    return report


def diversity_report(
    items: Sequence[Any],
    *,
    fields: Sequence[str] | None = None,
    sampled: Sequence[Mapping[str, Any]] = (),
    targets: Mapping[str, Mapping[str, float]] | None = None,
    threshold: float = 0.8,
    rejected_near_duplicates: int = 0,
    near_dup_sample: int | None = None,
) -> dict[str, Any]:
    """``near_dup_sample``: look for near-duplicates among the first that many items only (MinHash costs about a
    millisecond per item); ``near_duplicate_rate`` is then the rate in that sample."""
    texts = [item_text(item, fields) for item in items]
    index = NearDupIndex(fields, threshold=threshold)
    with_twin: set[int] = set()
    sample = items if near_dup_sample is None else items[:near_dup_sample]
    for i, item in enumerate(sample):
        match = index.nearest(item)
        if match is not None:
            with_twin.update((i, int(match[0])))
        index.add(str(i), item)
    return {
        "items": len(items),
        "fields": list(fields or []),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "near_duplicate_threshold": threshold,
        "near_duplicate_rate": round(len(with_twin) / len(sample), 4) if sample else 0.0,
        "near_duplicate_sample": len(sample),
        "near_duplicates_rejected": rejected_near_duplicates,
        "categories": category_report(sampled, targets or {}),
    }
