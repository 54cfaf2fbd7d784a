"""Answering with what a service behind the gateway answered: its status and its JSON body, unchanged."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from llmts_gateway.domain.ports import Answer


def relay(answer: Answer) -> JSONResponse:
    """The upstream's answer as the gateway's (a non-JSON body already became an ``upstream_error`` body)."""
    return JSONResponse(answer.body, status_code=answer.status)
