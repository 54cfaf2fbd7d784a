"""``/datasets*``: seed datasets (templates service) — upload a CSV, JSONL or Parquet file as the raw body, list,
read with a sample or by pages of rows, delete. Private to their owner.

Every route needs a bearer token; parameters are validated here, then the request is forwarded and the service's
answer relayed. The upload is not buffered by the gateway: its body streams through to the templates service (the
edge counts it against ``DATASET_MAX_BYTES``; 413 past it).
"""

# ruff: noqa: ARG001  -- parameters are declared for validation and the OpenAPI document; the request is forwarded.
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from llmts_api.datasets import (
    DATASET_ID_PATTERN,
    UPLOAD_MEDIA_TYPES,
    DatasetPublic,
    DatasetRowsPublic,
    DatasetRowsQuery,
    DatasetsPublic,
    DatasetsQuery,
    DatasetUploadQuery,
)
from llmts_common.query import reject_unknown_query
from llmts_gateway.deps import Context, CurrentUser
from llmts_gateway.entrypoints.openapi import error_response

DatasetId = Annotated[str, Path(pattern=DATASET_ID_PATTERN, description="Dataset id.")]
_CSV_EXAMPLE = "sku,title,price\nA-1,Kettle,29.90\nA-2,Mug,7.50\n"
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The file itself as the raw body: CSV with a header row, JSONL (one object per line), or "
        "Parquet. `curl --data-binary @products.csv -H 'Content-Type: text/csv'`.",
        "content": {
            media: {
                "schema": {"type": "string", "format": "binary"},
                **({"example": _CSV_EXAMPLE} if fmt == "csv" else {}),
            }
            for media, fmt in UPLOAD_MEDIA_TYPES.items()
        },
    }
}
_COMMON: dict[int | str, dict[str, Any]] = {
    401: error_response("Missing or invalid bearer token", "unauthorized", "missing bearer token"),
    422: error_response("Invalid request", "validation_error", "invalid request: limit: too large"),
    503: error_response(
        "The templates service is unavailable", "service_unavailable", "the templates service is unavailable"
    ),
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: error_response("No such dataset, or another user's", "dataset_not_found", "dataset not found")
}

router = APIRouter(
    prefix="/datasets", tags=["datasets"], responses=_COMMON, dependencies=[Depends(reject_unknown_query)]
)


@router.post(
    "",
    status_code=201,
    response_model=DatasetPublic,
    summary="Upload a seed dataset (CSV, JSONL or Parquet as the raw body, ≤ 100 MB by default)",
    openapi_extra=UPLOAD_BODY,
    responses={
        409: error_response(
            "Too many datasets", "dataset_limit_reached", "you have 100 datasets, the most one user may keep"
        ),
        413: error_response(
            "The file is too large", "payload_too_large", "request body exceeds 104857600 bytes"
        ),
        422: error_response(
            "The file cannot be read (details.line names the line)",
            "invalid_dataset",
            "csv file: line 4: expected 3 fields, got 2",
        ),
    },
)
async def upload_dataset(
    request: Request, ctx: Context, _user: CurrentUser, query: Annotated[DatasetUploadQuery, Query()]
) -> Response:
    return await ctx.upstreams.forward_stream("templates", request, "/datasets")


@router.get("", response_model=DatasetsPublic, summary="My seed datasets, newest first")
async def list_datasets(
    request: Request, ctx: Context, _user: CurrentUser, query: Annotated[DatasetsQuery, Query()]
) -> Response:
    return await ctx.upstreams.forward("templates", request, "/datasets")


@router.get(
    "/{dataset_id}",
    response_model=DatasetPublic,
    summary="One of my datasets, with its first rows",
    responses=_NOT_FOUND,
)
async def get_dataset(request: Request, ctx: Context, _user: CurrentUser, dataset_id: DatasetId) -> Response:
    return await ctx.upstreams.forward("templates", request, f"/datasets/{dataset_id}")


@router.get(
    "/{dataset_id}/rows",
    response_model=DatasetRowsPublic,
    summary="A page of a dataset's rows",
    responses=_NOT_FOUND,
)
async def dataset_rows(
    request: Request,
    ctx: Context,
    _user: CurrentUser,
    dataset_id: DatasetId,
    query: Annotated[DatasetRowsQuery, Query()],
) -> Response:
    return await ctx.upstreams.forward("templates", request, f"/datasets/{dataset_id}/rows")


@router.delete(
    "/{dataset_id}", status_code=204, summary="Delete one of my datasets and its rows", responses=_NOT_FOUND
)
async def delete_dataset(
    request: Request, ctx: Context, _user: CurrentUser, dataset_id: DatasetId
) -> Response:
    return await ctx.upstreams.forward("templates", request, f"/datasets/{dataset_id}")
