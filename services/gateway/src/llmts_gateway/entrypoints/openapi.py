"""OpenAPI helpers shared by the route modules."""

from __future__ import annotations

from typing import Any

from llmts_common.errors import error_body


def error_response(description: str, code: str, message: str) -> dict[str, Any]:
    """A documented error answer (``responses=``) with an example of the error body."""
    return {
        "description": description,
        "content": {"application/json": {"example": error_body(code, message)}},
    }
