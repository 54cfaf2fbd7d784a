"""Provenance: how each item was made (model, task, attempts, tokens), by the ``provenance`` export option.

One ordered table of fields (:data:`FIELDS`) drives every format, so a new field (issue 18: seed row id,
sampled values, judge scores) is one entry here plus its value in the exporter's projection
(``domain/jobs.item_provenance``):

* json/jsonl: a ``_provenance`` object appended to each item object (a text item becomes
  ``{"text": …, "_provenance": {…}}``); fields whose value is unknown (``null``) are left out.
* csv/xlsx/parquet: one column per field, prefixed ``_`` (``_model``, ``_attempts`` …), after the item's
  columns; objects (``row``) as JSON text; parquet types from :data:`FIELDS`.
* xml: attributes of ``<item>`` prefixed ``_`` (``<item index="0" _model="…">``; objects as JSON text).
* md/html tables: one ``_provenance`` cell; md/html sections, txt and pdf: one ``_provenance`` line per item
  (``model: … · provider: … · attempts: 2 …``).

``index`` is the item's own index (always known). ``"auto"`` (the default) shows provenance only when the
job's items came from more than one model (``ExportMeta.models``: a fallback chain moved the job).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from ._model import ExportItem, ExportMeta, ExportOptions
from ._values import json_text, scalar_text

PREFIX = "_"
OBJECT_KEY = "_provenance"
"""The key of the provenance object (json/jsonl) and the label of the provenance cell/line."""


@dataclass(frozen=True, slots=True)
class ProvenanceField:
    name: str
    kind: Literal["string", "integer", "number", "object"]
    description: str


FIELDS: tuple[ProvenanceField, ...] = (
    ProvenanceField("model", "string", "the model id that produced the item"),
    ProvenanceField("provider", "string", "the provider adapter of that model (null: the default one)"),
    ProvenanceField("index", "integer", "the item's index in the job's result (0..N-1)"),
    ProvenanceField("target", "integer", "the wanted item's number the item was generated for"),
    ProvenanceField("task", "integer", "the task's number in the job's tasks (0 without tasks)"),
    ProvenanceField("task_index", "integer", "the item's number within its task"),
    ProvenanceField("attempts", "integer", "item attempts (repairs included) until it was valid"),
    ProvenanceField("prompt_tokens", "integer", "prompt tokens of the item's calls"),
    ProvenanceField("completion_tokens", "integer", "completion tokens of the item's calls"),
    ProvenanceField("cost_usd", "number", "cost of the item's calls"),
    ProvenanceField("row", "object", "the task row (variables) the item was generated from, when any"),
    ProvenanceField("dataset_id", "string", "the seed dataset the item's row came from, when any"),
    ProvenanceField("seed_row", "integer", "the seed dataset row number (0-based) the item got, when any"),
    ProvenanceField(
        "sampled", "object", "the sampled variables' values (drawn from the job seed, no tokens)"
    ),
    ProvenanceField("judge", "object", "the LLM judge's scores {name: number}, when the job has a judge"),
)
NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
COLUMNS: tuple[str, ...] = tuple(PREFIX + name for name in NAMES)


def wanted(meta: ExportMeta, options: ExportOptions) -> bool:
    """Whether the export shows provenance: ``True``/``False``, or ``"auto"``: more than one model."""
    if options.provenance == "auto":
        return len(meta.models) > 1
    return options.provenance is True


def values(item: ExportItem) -> list[Any]:
    """The item's provenance in :data:`FIELDS` order (``None`` where unknown)."""
    known = item.provenance or {}
    return [item.index if name == "index" else known.get(name) for name in NAMES]


def as_object(item: ExportItem) -> dict[str, Any]:
    """The known fields, in :data:`FIELDS` order (what json/jsonl carry as ``_provenance``)."""
    return {name: v for name, v in zip(NAMES, values(item), strict=True) if v is not None}


def line(item: ExportItem) -> str:
    """One readable line: ``model: x · provider: y · index: 3 · …`` (objects as JSON text)."""
    return " · ".join(f"{name}: {_text(v)}" for name, v in as_object(item).items())


def flat_values(item: ExportItem) -> list[Any]:
    """Cells of the ``_``-prefixed columns: scalars as they are, objects as JSON text."""
    return [json_text(v) if isinstance(v, dict | list) else v for v in values(item)]


def check_names(names: Iterable[str], reserved: Iterable[str] = COLUMNS, what: str = "column") -> None:
    """``ValueError`` when the item's own columns/keys already use a provenance name (data would be hidden)."""
    taken = sorted(set(names) & set(reserved))
    if taken:
        raise ValueError(
            f"the items have a {what} {taken[0]!r} that provenance would overwrite; export with provenance=false"
        )


def _text(value: Any) -> str:
    return json_text(value) if isinstance(value, dict | list) else scalar_text(value)
