"""The gateway's OpenAPI document: error examples for the route modules, bearer security for the whole API.

Route modules document their specific error answers with :func:`error_response`. :func:`install` then finishes
the generated document once (it is cached by FastAPI):

- ``components.securitySchemes.bearerAuth`` (HTTP bearer, JWT): every operation that reads the ``Authorization``
  header (through ``deps.current_user`` or on its own) is marked with it, and the raw header parameter is removed,
  so the Swagger UI's *Authorize* button sends ``Authorization: Bearer <token>`` on every call;
- every 4xx/5xx answer is the error body (``ErrorBody``) and carries an example: the route's own, else the usual
  one for each known code its description names in backticks (``error_examples.NAMED_ERRORS``), else the usual one
  for its status (``error_examples.DEFAULT_ERRORS``). FastAPI's default 422 (``HTTPValidationError``, a shape this API
  never answers) is replaced by the error body.

Request and success bodies take their examples from the ``llmts_api`` models (``json_schema_extra``), the same
classes the services declare, so the gateway's components stay equal to theirs (``test_openapi_contract``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from llmts_api.errors import ErrorBody
from llmts_common.errors import error_body
from llmts_gateway.entrypoints.error_examples import DEFAULT_ERRORS, NAMED_ERRORS

BEARER = "bearerAuth"
SECURITY_SCHEME: dict[str, Any] = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "The `access_token` of `POST /auth/login` (or `/auth/refresh`): valid 15 minutes, then refresh.",
}
ERROR_REF = "#/components/schemas/ErrorBody"
CODE_IN_TEXT = re.compile(r"`([a-z]+(?:_[a-z]+)*)`")


def error_response(description: str, code: str, message: str, details: Any = None) -> dict[str, Any]:
    """A documented error answer (``responses=``) with an example of the error body."""
    return {
        "description": description,
        "content": {"application/json": {"example": error_body(code, message, details)}},
    }


Case = tuple[str, str, Any]
"""An error example: (code, message, details)."""


def error_cases(description: str, **cases: Case) -> dict[str, Any]:
    """A documented error answer with one named example per case (the Swagger UI offers them in a list)."""
    return {
        "description": description,
        "content": {
            "application/json": {
                "examples": {
                    name: {"summary": code, "value": error_body(code, message, details)}
                    for name, (code, message, details) in cases.items()
                }
            }
        },
    }


def install(app: FastAPI) -> None:
    """Replace ``app.openapi`` by one that finishes FastAPI's document (see the module docstring)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = finish(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def finish(doc: dict[str, Any]) -> dict[str, Any]:
    """Security scheme and requirements, error bodies and their examples (in place; returns ``doc``)."""
    components = doc.setdefault("components", {})
    components.setdefault("securitySchemes", {})[BEARER] = SECURITY_SCHEME
    schemas = components.setdefault("schemas", {})
    error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, schema in error_schema.pop("$defs", {}).items():
        schemas.setdefault(name, schema)
    schemas.setdefault("ErrorBody", error_schema)
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            _secure(operation)
            for status, answer in operation.get("responses", {}).items():
                if str(status)[0] in "45":
                    _error_answer(int(status), answer)
    _drop_unused(schemas, doc, ("HTTPValidationError", "ValidationError"))
    return doc


def _secure(operation: dict[str, Any]) -> None:
    """An operation that reads the Authorization header needs the bearer scheme; the header is not a parameter."""
    parameters = operation.get("parameters", [])
    header = [
        p for p in parameters if p.get("in") == "header" and p.get("name", "").lower() == "authorization"
    ]
    if not header:
        return
    kept = [p for p in parameters if p not in header]
    if kept:
        operation["parameters"] = kept
    else:
        operation.pop("parameters", None)
    operation["security"] = [{BEARER: []}]


def _error_answer(status: int, answer: dict[str, Any]) -> None:
    media = answer.setdefault("content", {}).setdefault("application/json", {})
    example = media.get("example")
    if isinstance(example, dict) and "error" not in example:
        return  # not an error body (/ready's 503 lists its checks)
    media["schema"] = {"$ref": ERROR_REF}
    if isinstance(example, dict) and isinstance(example.get("error"), dict):
        # FastAPI drops null values from the document: show the whole shape the API answers
        media["example"] = _whole(example)
    elif isinstance(media.get("examples"), dict):
        for named in media["examples"].values():
            if isinstance(named.get("value"), dict) and isinstance(named["value"].get("error"), dict):
                named["value"] = _whole(named["value"])
    elif "example" not in media and "examples" not in media:
        _fill(status, answer, media)


def _fill(status: int, answer: dict[str, Any], media: dict[str, Any]) -> None:
    """The codes the description names (`code`) that are known for this status, else the status's usual one."""
    named = [
        code
        for code in CODE_IN_TEXT.findall(answer.get("description", ""))
        if code in NAMED_ERRORS and NAMED_ERRORS[code][0] == status
    ]
    if named:
        media["examples"] = {
            code: {"summary": code, "value": error_body(code, *NAMED_ERRORS[code][1:])}
            for code in dict.fromkeys(named)
        }
        return
    code, message, details = DEFAULT_ERRORS.get(status, ("http_error", answer.get("description", ""), None))
    media["example"] = error_body(code, message, details)


def _whole(example: dict[str, Any]) -> dict[str, Any]:
    return error_body(**{k: example["error"].get(k) for k in ("code", "message", "details")})


def _drop_unused(schemas: dict[str, Any], doc: dict[str, Any], names: tuple[str, ...]) -> None:
    """Remove the named components once nothing refers to them (FastAPI's default 422 shapes)."""
    for name in names:
        rest = {k: v for k, v in schemas.items() if k != name}
        if name in schemas and f'"#/components/schemas/{name}"' not in json.dumps([doc.get("paths"), rest]):
            del schemas[name]
