"""Value objects shared by every writer."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple

from ._sink import HashingSink


@dataclass(frozen=True, slots=True)
class ExportItem:
    """One generated item: ``data`` is a dict for json templates and a str for text templates."""

    index: int
    data: Any
    provenance: Mapping[str, Any] | None = None
    """How the item was made (``model``, ``provider``, ``attempts`` …; see ``_provenance.FIELDS``); shown
    only when the export asks for provenance."""


@dataclass(frozen=True)
class ExportMeta:
    """What the export knows about the job; shown on title pages / meta sheets / envelopes."""

    job_id: str
    template_name: str
    template_version: int | None
    model: str
    created_at: datetime
    requested: int
    succeeded: int
    rejected: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    output_format: Literal["json", "text"]
    schema: dict[str, Any] | None
    models: tuple[str, ...] = ()
    """The models that produced the job's items, in order of first use (more than one after a fallback)."""
    diversity: Mapping[str, Any] | None = None
    """The job's diversity report (``GenerationCompleted.diversity``), appended by the ``diversity`` option."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (``created_at`` as ISO 8601, ``schema`` omitted: it belongs to the template)."""
        return {
            "job_id": self.job_id,
            "template_name": self.template_name,
            "template_version": self.template_version,
            "model": self.model,
            "models": list(self.models),
            "created_at": self.created_at.isoformat(),
            "requested": self.requested,
            "succeeded": self.succeeded,
            "rejected": self.rejected,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
            "output_format": self.output_format,
        }

    def display_rows(self) -> list[tuple[str, str]]:
        """Human-readable (label, value) rows for title pages and meta sheets."""
        version = "—" if self.template_version is None else str(self.template_version)
        return [
            ("Template", self.template_name),
            ("Version", version),
            ("Model", ", ".join(self.models) if len(self.models) > 1 else self.model),
            ("Job", self.job_id),
            ("Created", self.created_at.isoformat(timespec="seconds")),
            ("Requested", str(self.requested)),
            ("Succeeded", str(self.succeeded)),
            ("Rejected", str(self.rejected)),
            ("Prompt tokens", str(self.prompt_tokens)),
            ("Completion tokens", str(self.completion_tokens)),
            ("Cost, USD", f"{self.cost_usd:.6f}".rstrip("0").rstrip(".") if self.cost_usd else "0"),
            ("Output", self.output_format),
        ]


@dataclass(frozen=True)
class ExportOptions:
    """Per-export knobs; every field has a safe default."""

    envelope: bool = False
    """json/xml: wrap the items with the job's metadata (``{"meta": …, "items": […]}``)."""
    csv_bom: bool = False
    """csv: start with a UTF-8 BOM so Excel detects the encoding."""
    csv_delimiter: str = ","
    """csv: ``;`` suits Excel in locales whose decimal separator is a comma (ru_RU)."""
    xlsx_width_sample: int = 200
    """xlsx: how many leading items are looked at to size the columns (bounded, never all)."""
    parquet_row_group_size: int = 10_000
    """parquet: rows per row group; also the number of rows held in memory at once."""
    pdf_page_size: Literal["A4", "letter"] = "A4"
    pdf_title_page: bool = False
    """pdf: a first page with the job's metadata table (otherwise page 1 opens with a one-line header)."""

    nested: Literal["json", "flatten", "explode"] | None = None
    """csv/xlsx/parquet: ``flatten`` dotted columns (csv/xlsx default), ``json`` one column per top-level
    key with JSON text, ``explode`` one row per array element; parquet's default keeps struct/list types."""
    explode_field: str | None = None
    """``explode``: the dotted name of the array column to explode (default: the first array column)."""
    provenance: bool | Literal["auto"] = "auto"
    """Show how each item was made (model, task, attempts, tokens; see ``_provenance``); ``auto``: only
    when the job's items came from more than one model."""
    diversity: bool = False
    """Append the job's diversity report (see ``_diversity``: which formats carry it, and where)."""

    def __post_init__(self) -> None:
        if len(self.csv_delimiter) != 1 or self.csv_delimiter in "\r\n\"'":
            raise ValueError("csv_delimiter must be one character other than a quote or a line break")
        if self.xlsx_width_sample < 1 or self.parquet_row_group_size < 1:
            raise ValueError("xlsx_width_sample and parquet_row_group_size must be positive")
        if self.nested not in (None, "json", "flatten", "explode"):
            raise ValueError("nested must be json, flatten or explode")
        if self.explode_field is not None and self.nested != "explode":
            raise ValueError("explode_field needs nested=explode")
        if not (self.provenance.__class__ is bool or self.provenance == "auto"):
            raise ValueError("provenance must be true, false or auto")


@dataclass(frozen=True)
class WriteStats:
    """What was written: byte count and SHA-256 of exactly the bytes given to ``out``."""

    bytes: int
    items: int
    sha256: str


ItemsFactory = Callable[[], Iterable[ExportItem]]


Writer = Callable[[ItemsFactory, "ExportMeta", HashingSink, "ExportOptions"], int]
"""Writes every item to the sink and returns how many it wrote."""


class FormatSpec(NamedTuple):
    content_type: str
    extension: str
    writer: Writer


class SchemaDriftError(ValueError):
    """An item has a key its closed schema does not allow (so a single-pass export would drop it)."""


__all__ = [
    "ExportItem",
    "ExportMeta",
    "ExportOptions",
    "FormatSpec",
    "ItemsFactory",
    "SchemaDriftError",
    "WriteStats",
    "Writer",
]
