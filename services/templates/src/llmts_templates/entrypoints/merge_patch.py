"""The body of ``PATCH /templates/{id}``: a JSON merge patch, read by hand because its media type
(``application/merge-patch+json``, RFC 7396) is not one FastAPI parses; ``application/json`` is accepted too."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from llmts_api.templates import MERGE_PATCH_MEDIA_TYPE
from llmts_common.errors import AppError, InvalidField

ACCEPTED_MEDIA_TYPES = (MERGE_PATCH_MEDIA_TYPE, "application/json")


class UnsupportedMediaType(AppError):
    status_code = 415
    code = "unsupported_media_type"


async def read_merge_patch(request: Request) -> Any:
    """The parsed patch; 415 for another media type, 422 for a body that is not JSON."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in ACCEPTED_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"a template patch is {MERGE_PATCH_MEDIA_TYPE} (or application/json), not {media or 'untyped'}",
            details={"accepted": list(ACCEPTED_MEDIA_TYPES)},
        )
    try:
        return json.loads(await request.body())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidField(f"the body is not JSON: {exc}", loc=("body",), type="json_invalid") from None
