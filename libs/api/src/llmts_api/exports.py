"""Exports: request an export of a job's items, follow its status, list them, and the formats there are.

``POST /exports`` is answered by the gateway (202, through its outbox); status, listing and download are the
exporter's. ``ExportFormat`` lists the formats the exporter writes (its writer table must name the same ones).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmts_api import examples as ex
from llmts_api.paging import MAX_OFFSET

ExportFormat = Literal["json", "jsonl", "csv", "xlsx", "pdf", "md", "html", "xml", "txt", "parquet"]
ExportStatus = Literal["queued", "running", "ready", "failed"]
EXPORT_FORMATS: tuple[str, ...] = get_args(ExportFormat)

MAX_LIST = 500


class ExportOptions(BaseModel):
    """Writer options; every field has a safe default."""

    model_config = ConfigDict(extra="forbid")

    envelope: bool = Field(default=False, description='json/xml: wrap items as {"meta": …, "items": […]}.')
    csv_bom: bool = Field(default=False, description="csv: start with a UTF-8 BOM (Excel).")
    csv_delimiter: str = Field(
        default=",", min_length=1, max_length=1, description="csv: ';' suits ru_RU Excel."
    )
    xlsx_width_sample: int = Field(default=200, ge=1, le=10_000)
    parquet_row_group_size: int = Field(default=10_000, ge=1, le=1_000_000)
    pdf_page_size: Literal["A4", "letter"] = "A4"
    pdf_title_page: bool = Field(
        default=False,
        description="pdf: a first page with the job's metadata table (else page 1 opens with a one-line header).",
    )
    nested: Literal["json", "flatten", "explode"] | None = Field(
        default=None,
        description=(
            "csv/xlsx/parquet: nested data. flatten = dotted columns (csv/xlsx default); json = one column per "
            "top-level key, objects/arrays as JSON text; explode = one row per element of an array column. "
            "Unset, parquet keeps struct/list types."
        ),
    )
    explode_field: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="With nested=explode: the dotted name of the array column (default: the first array column).",
    )

    provenance: bool | Literal["auto"] = Field(
        default="auto",
        description=(
            "How each item was made (model, provider, index, target, task, task_index, attempts, tokens, cost, "
            "task row): json/jsonl a `_provenance` object per item; csv/xlsx/parquet `_`-prefixed columns "
            "(`_model`, `_attempts`, …) after the item's; xml `_`-prefixed attributes of `<item>`; md/html/txt/pdf "
            "one `_provenance` cell or line per item. `auto`: shown when the job's items came from more than one "
            "model (a fallback chain moved the job)."
        ),
    )

    diversity: bool = Field(
        default=False,
        description=(
            "Append the job's diversity report (distinct-n, near-duplicate rate, sampled category shares vs their "
            "targets): json/xml the envelope form with a `diversity` key/element after the items; xlsx a "
            "`diversity` sheet; md/html/txt a Diversity section; parquet the `llmts.diversity` file metadata; "
            "not in csv, jsonl or pdf (see `GET /history/{id}`). Jobs without a report get none."
        ),
    )

    @model_validator(mode="after")
    def _explode_field_needs_explode(self) -> ExportOptions:
        if self.explode_field is not None and self.nested != "explode":
            raise ValueError("explode_field needs nested=explode")
        return self


class ExportCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"job_id": "j_8c1e", "format": "csv", "options": {"csv_delimiter": ";"}}]
        },
    )

    job_id: str = Field(min_length=1, max_length=200)
    format: ExportFormat = "json"
    options: ExportOptions = Field(default_factory=ExportOptions)


class ExportLinks(BaseModel):
    self: str = Field(examples=["/exports/e_51b2"])
    download: str | None = Field(
        default=None, description="Present once the export is ready.", examples=["/exports/e_51b2/download"]
    )


class ExportPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.EXPORT]})
    export_id: str
    job_id: str
    format: str = Field(examples=["csv"])
    options: dict[str, Any] = Field(
        default_factory=dict, description="The options that differ from the defaults."
    )
    status: ExportStatus
    reason: str | None = Field(default=None, description="Why the export failed.")
    waiting: str | None = Field(default=None, description="What a queued export is waiting for.")
    bytes: int | None = None
    sha256: str | None = None
    items: int | None = None
    filename: str | None = None
    content_type: str | None = None
    created_at: datetime
    finished_at: datetime | None = None
    links: ExportLinks


class ExportsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.EXPORTS]})
    items: list[ExportPublic] = Field(description="Newest first.")
    total: int = Field(description="Exports matching the filters (all pages).")
    limit: int
    offset: int


class ExportsQuery(BaseModel):
    """Filters of ``GET /exports`` (the caller's exports, newest first)."""

    job_id: str | None = Field(default=None, max_length=200)
    format: ExportFormat | None = None
    limit: int = Field(default=100, ge=1, le=MAX_LIST)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


class SignedDownloadQuery(BaseModel):
    """The query of ``GET /downloads/{export_id}``: the signed link of an ``ExportReady`` event (no token)."""

    expires: str = Field(max_length=32, description="Unix time (seconds) the link expires at.")
    signature: str = Field(
        max_length=128, description="HMAC-SHA256 (hex) of the export id and the expiry, by the exporter."
    )


class FormatPublic(BaseModel):
    name: str = Field(examples=["xlsx"])
    content_type: str
    extension: str = Field(examples=["xlsx"])


class FormatsPublic(BaseModel):
    formats: list[FormatPublic]


class JobProjectionPublic(BaseModel):
    """What the exporter knows of a job (its own projection of generation events); the gateway's ownership check."""

    job_id: str
    status: str | None
    terminal: bool
    requested: int
    succeeded: int
    rejected: int
    items_projected: int
    template_name: str | None = None
