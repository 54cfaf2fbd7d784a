"""``/datasets``: a user's seed datasets (upload, list, get with a sample, rows, delete), and
``/internal/datasets/{id}/rows`` for the generator (``X-Internal-Token``; the job's user must own the dataset).

The upload's body is the file itself, streamed (the edge does not buffer ``POST /datasets``; see bootstrap).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

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
from llmts_common.internal import check_internal_token
from llmts_common.query import reject_unknown_query
from llmts_templates import datasets
from llmts_templates.datasets import DatasetDeps
from llmts_templates.entrypoints.http import AppServices, Context, CurrentUser

DatasetId = Annotated[str, Path(pattern=DATASET_ID_PATTERN, description="Dataset id.")]
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The file itself (CSV with a header row, JSONL, or Parquet), as the raw body.",
        "content": {
            media: {"schema": {"type": "string", "format": "binary"}} for media in UPLOAD_MEDIA_TYPES
        },
    }
}

router = APIRouter(prefix="/datasets", tags=["datasets"], dependencies=[Depends(reject_unknown_query)])
internal = APIRouter(prefix="/internal/datasets", tags=["internal"], include_in_schema=False)


def deps_of(svc: AppServices) -> DatasetDeps:
    assert svc.datasets is not None, "bootstrap wires the datasets"
    return svc.datasets


@router.post(
    "",
    status_code=201,
    response_model=DatasetPublic,
    summary="Upload a seed dataset (CSV, JSONL or Parquet as the raw body)",
    openapi_extra=UPLOAD_BODY,
)
async def upload(
    request: Request, user: CurrentUser, svc: Context, query: Annotated[DatasetUploadQuery, Query()]
) -> dict[str, Any]:
    fmt = datasets.pick_format(query.format, request.headers.get("content-type"), query.name)
    return await datasets.upload(deps_of(svc), user.user_id, query.name, fmt, request.stream())


@router.get("", response_model=DatasetsPublic, summary="My datasets, newest first")
async def list_(user: CurrentUser, svc: Context, query: Annotated[DatasetsQuery, Query()]) -> dict[str, Any]:
    return await datasets.list_(deps_of(svc), user.user_id, query.limit, query.offset)


@router.get("/{dataset_id}", response_model=DatasetPublic, summary="One of my datasets, with its first rows")
async def get(dataset_id: DatasetId, user: CurrentUser, svc: Context) -> dict[str, Any]:
    return await datasets.get(deps_of(svc), user.user_id, dataset_id)


@router.get("/{dataset_id}/rows", response_model=DatasetRowsPublic, summary="A page of a dataset's rows")
async def rows(
    dataset_id: DatasetId, user: CurrentUser, svc: Context, query: Annotated[DatasetRowsQuery, Query()]
) -> dict[str, Any]:
    return await datasets.rows(deps_of(svc), user.user_id, dataset_id, query.offset, query.limit)


@router.delete("/{dataset_id}", status_code=204, summary="Delete one of my datasets and its rows")
async def delete(dataset_id: DatasetId, user: CurrentUser, svc: Context) -> Response:
    await datasets.delete(deps_of(svc), user.user_id, dataset_id)
    return Response(status_code=204)


@internal.get("/{dataset_id}/rows", response_model=DatasetRowsPublic)
async def internal_rows(
    dataset_id: DatasetId,
    svc: Context,
    request: Request,
    user_id: Annotated[str, Query(min_length=1, max_length=200)],
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    x_internal_token: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    check_internal_token(request.app.state.internal_token, x_internal_token)
    return await datasets.rows(deps_of(svc), user_id, dataset_id, offset, limit)
