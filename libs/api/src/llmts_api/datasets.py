"""Seed datasets (``/datasets``): a user's table of rows — uploaded as CSV, JSONL or Parquet — that a job samples one
row per item from, as that item's variables. Private to their owner."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmts_api.paging import MAX_OFFSET

DATASET_ID_PATTERN = r"^[0-9a-f]{32}$"
DatasetFormat = Literal["csv", "jsonl", "parquet"]
ColumnType = Literal["integer", "number", "boolean", "string", "object", "array", "null"]
MAX_ROWS_PAGE = 1000

UPLOAD_MEDIA_TYPES: dict[str, DatasetFormat] = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/jsonl": "jsonl",
    "application/x-ndjson": "jsonl",
    "application/x-jsonlines": "jsonl",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}

_EXAMPLE: dict[str, Any] = {
    "id": "5b1f0c7e9a4d4e21b8f3a0c2d9e7f611",
    "name": "products",
    "format": "csv",
    "rows": 1000,
    "columns": [
        {"name": "sku", "type": "string", "nullable": False},
        {"name": "title", "type": "string", "nullable": False},
        {"name": "price", "type": "number", "nullable": True},
    ],
    "bytes": 48213,
    "created_at": "2026-12-07T01:10:00Z",
}


class DatasetColumn(BaseModel):
    name: str
    type: ColumnType = Field(
        description="Inferred: from what the cells look like for CSV (cells stay strings), from the values for "
        "JSONL and Parquet; `null` when every cell is empty."
    )
    nullable: bool = Field(description="Some cells are empty, null or missing.")


class DatasetPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    id: str
    name: str
    format: DatasetFormat
    rows: int
    columns: list[DatasetColumn]
    bytes: int = Field(description="Size of the uploaded file.")
    created_at: datetime
    sample: list[dict[str, Any]] | None = Field(
        default=None, description="The first rows (`GET /datasets/{id}` only)."
    )


class DatasetsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_EXAMPLE], "total": 1, "limit": 20, "offset": 0}]})  # fmt: skip
    items: list[DatasetPublic]
    total: int
    limit: int
    offset: int


class DatasetRowsPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "dataset_id": _EXAMPLE["id"],
                    "offset": 0,
                    "limit": 1,
                    "total": 1000,
                    "rows": [{"sku": "A-1", "title": "Kettle", "price": "29.90"}],
                }
            ]
        }
    )
    dataset_id: str
    offset: int
    limit: int
    total: int = Field(description="Rows in the dataset.")
    rows: list[dict[str, Any]]


class DatasetUploadQuery(BaseModel):
    """``POST /datasets``: the file is the raw request body (``curl --data-binary @products.csv -H 'Content-Type:
    text/csv'``); ``format`` is taken from the parameter, else the content type, else the name's extension."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, examples=["products"])
    format: DatasetFormat | None = None


class DatasetsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


class DatasetRowsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offset: int = Field(default=0, ge=0, le=10_000_000)
    limit: int = Field(default=100, ge=1, le=MAX_ROWS_PAGE)


class DatasetSeed(BaseModel):
    """``seed`` of a template or a job: each item gets one row of the dataset as variables."""

    model_config = ConfigDict(extra="forbid")

    dataset_id: str = Field(pattern=DATASET_ID_PATTERN)
    sampling: Literal["ordered", "shuffle", "with_replacement"] = Field(
        default="ordered",
        description="`ordered`: item i gets row i (cycling); `shuffle`: a permutation drawn from the job seed "
        "(cycling); `with_replacement`: an independent draw per item.",
    )
    columns: list[str] | None = Field(
        default=None, max_length=200, description="Only these columns (default all)."
    )
