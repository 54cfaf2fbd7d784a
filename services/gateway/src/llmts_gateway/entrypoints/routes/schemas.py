"""``GET /schemas/...``: the published JSON Schemas of the events — the ``dataschema`` URL of every envelope.

Public (no token: the schemas are the contract other teams build on) and cacheable: a versioned file
(``<type>/v<N>.json``) never changes incompatibly, so it is served ``immutable`` for a day; ``index.json`` and
``envelope.json`` for five minutes. ``ETag`` / ``If-None-Match`` answer 304.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request, Response

from llmts_common.errors import NotFound
from llmts_common.query import reject_unknown_query
from llmts_gateway.adapters.schema_files import SchemaFiles
from llmts_gateway.deps import Context
from llmts_gateway.entrypoints.openapi import error_cases

router = APIRouter(tags=["event schemas"], dependencies=[Depends(reject_unknown_query)])

MEDIA_TYPE = "application/schema+json"
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: error_cases("No such schema.", schema=("schema_not_found", "no such event schema", None))
}
_ROOT_EXAMPLE = {
    "envelope": "envelope.json",
    "messages": [
        {
            "type": "llmts.export.ready",
            "version": 1,
            "topic": "export.events",
            "key": "export_id",
            "name": "ExportReady",
            "schema": "llmts.export.ready/v1.json",
        }
    ],
}
_MESSAGE_EXAMPLE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "llmts.export.ready",
    "x-llmts-type": "llmts.export.ready",
    "x-llmts-version": 1,
    "type": "object",
    "properties": {"export_id": {"type": "string"}, "sha256": {"type": "string"}},
    "required": ["export_id", "sha256"],
}


def _content(example: dict[str, Any]) -> dict[str, Any]:
    return {MEDIA_TYPE: {"schema": {"type": "object"}, "example": example}}


def _files(request: Request, ctx: Context) -> SchemaFiles:
    files: SchemaFiles | None = getattr(request.app.state, "schema_files", None)
    if files is None:  # one per app, read on first use
        files = SchemaFiles(ctx.settings.schemas_dir)
        request.app.state.schema_files = files
    return files


Files = Annotated[SchemaFiles, Depends(_files)]


async def _serve(files: SchemaFiles, name: str, if_none_match: str | None, max_age: str) -> Response:
    found = await files.get(name)
    if found is None:
        raise NotFound("no such event schema", code="schema_not_found", details={"schema": name})
    headers = {"ETag": found.etag, "Cache-Control": f"public, {max_age}"}
    if if_none_match is not None and found.etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=MEDIA_TYPE, headers=headers)


@router.get(
    "/schemas/{name}.json",
    summary="The schema index or the envelope schema",
    response_class=Response,
    responses={
        200: {"content": _content(_ROOT_EXAMPLE), "description": "index.json (shown) or envelope.json"},
        **_NOT_FOUND,
    },
)
async def schema_root(
    files: Files,
    name: Annotated[str, Path(pattern="^(index|envelope)$")],
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    return await _serve(files, f"{name}.json", if_none_match, "max-age=300")


@router.get(
    "/schemas/{message_type}/v{version}.json",
    summary="The JSON Schema of one event type and version (the envelope's dataschema)",
    response_class=Response,
    responses={
        200: {"content": _content(_MESSAGE_EXAMPLE), "description": "The schema of `data` (abridged)."},
        **_NOT_FOUND,
    },
)
async def message_schema(
    files: Files,
    message_type: Annotated[str, Path(pattern=r"^[a-z0-9_.]{1,100}$", examples=["llmts.export.ready"])],
    version: Annotated[int, Path(ge=1, le=9999)],
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    return await _serve(files, f"{message_type}/v{version}.json", if_none_match, "max-age=86400, immutable")
