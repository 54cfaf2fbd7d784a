"""The error body every endpoint answers with on a 4xx/5xx: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="Machine-readable error code.", examples=["validation_error"])
    message: str = Field(description="Human-readable explanation.", examples=["count: must be >= 1"])
    details: Any = Field(default=None, description="Structured details (field errors, limits, ids) or null.")
    correlation_id: str | None = Field(
        default=None,
        description="The request's correlation id (also the X-Correlation-Id answer header), to quote in a report.",
    )


class ErrorBody(BaseModel):
    """The error body of every non-2xx answer."""

    error: ErrorDetail
