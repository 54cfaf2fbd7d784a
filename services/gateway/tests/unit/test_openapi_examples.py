"""Every operation of the gateway's OpenAPI shows an example of each body it takes and each answer it documents,
and every authenticated operation declares the bearer scheme (the Swagger UI's Authorize button).

Which operations are authenticated is read from the routes themselves (a dependency on ``current_user`` or an
``Authorization`` header read), not from the document, so a route that reads the token without being marked fails.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from llmts_gateway.bootstrap import bootstrap
from llmts_gateway.deps import current_user
from llmts_gateway.entrypoints.openapi import BEARER

NO_BODY = {"204", "301", "302", "303", "304", "307", "308"}


@pytest.fixture(scope="module")
def app() -> FastAPI:
    built, _, _ = bootstrap()
    return built


@pytest.fixture(scope="module")
def doc(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            yield method, path, operation


def _schema_has_example(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    if "example" in schema or schema.get("examples"):
        return True
    if "$ref" in schema:
        return _schema_has_example(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return _schema_has_example(schema["items"], components)
    branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]  # an optional body
    if branches:
        return all(_schema_has_example(b, components) for b in branches)
    return schema.get("format") == "binary"  # a file: nothing to show


def _media_has_example(media: dict[str, Any], components: dict[str, Any]) -> bool:
    if "example" in media or media.get("examples"):
        return True
    return _schema_has_example(media.get("schema", {}), components)


def missing_examples(doc: dict[str, Any]) -> list[str]:
    """``METHOD path: where`` for each request body or answer without an example (or an answer without a body)."""
    components = doc.get("components", {}).get("schemas", {})
    out: list[str] = []
    for method, path, operation in _operations(doc):
        where = f"{method.upper()} {path}"
        for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
            if not _media_has_example(media, components):
                out.append(f"{where}: request body {media_type}")
        for status, answer in operation.get("responses", {}).items():
            content = answer.get("content", {})
            if not content and status not in NO_BODY:
                out.append(f"{where}: {status} has no body")
            for media_type, media in content.items():
                if not _media_has_example(media, components):
                    out.append(f"{where}: {status} {media_type}")
    return out


def _reads_token(dependant: Dependant) -> bool:
    if dependant.call is current_user:
        return True
    if any(p.alias.lower() == "authorization" for p in dependant.header_params):
        return True
    return any(_reads_token(d) for d in dependant.dependencies)


def authenticated_operations(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every documented route whose dependencies read the bearer token."""
    out = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and context.include_in_schema and _reads_token(route.dependant):
            out |= {(method.lower(), str(context.path)) for method in context.methods or ()}
    return out


def unsecured(doc: dict[str, Any], authenticated: set[tuple[str, str]]) -> list[str]:
    """Authenticated operations without the bearer requirement, and operations showing a raw Authorization header."""
    out = []
    for method, path, operation in _operations(doc):
        if (method, path) in authenticated and {BEARER: []} not in operation.get("security", []):
            out.append(f"{method.upper()} {path}: no bearer security")
        if any(
            p["in"] == "header" and p["name"].lower() == "authorization"
            for p in operation.get("parameters", [])
        ):
            out.append(f"{method.upper()} {path}: raw authorization header")
    return out


def test_every_body_and_answer_has_an_example(doc: dict[str, Any]) -> None:
    assert missing_examples(doc) == []


def test_every_error_answer_is_the_error_body(doc: dict[str, Any]) -> None:
    for _, path, operation in _operations(doc):
        for status, answer in operation["responses"].items():
            if status[0] in "45" and path != "/ready":  # /ready answers 503 with its checks
                media = answer["content"]["application/json"]
                assert media["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
                shown = (
                    [media["example"]]
                    if "example" in media
                    else [e["value"] for e in media["examples"].values()]
                )
                for example in shown:
                    assert set(example["error"]) == {"code", "message", "details", "correlation_id"}
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_authenticated_operations_declare_the_bearer_scheme(app: FastAPI, doc: dict[str, Any]) -> None:
    authenticated = authenticated_operations(app)
    assert {
        ("post", "/generate"),
        ("get", "/templates"),
        ("get", "/generate/{job_id}/events"),
    } <= authenticated
    assert ("post", "/auth/login") not in authenticated
    assert doc["components"]["securitySchemes"][BEARER] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": doc["components"]["securitySchemes"][BEARER]["description"],
    }
    assert unsecured(doc, authenticated) == []
    login = doc["paths"]["/auth/login"]["post"]
    assert "security" not in login


def test_the_checks_notice_a_missing_example_or_security(app: FastAPI, doc: dict[str, Any]) -> None:
    broken = copy.deepcopy(doc)
    create = broken["paths"]["/generate"]["post"]
    shown = create["responses"]["422"]["content"]["application/json"]
    shown.pop("example", None)
    shown.pop("examples", None)
    create["security"] = []
    create["requestBody"]["content"]["application/json"]["schema"] = {"type": "object"}
    broken["paths"]["/templates"]["get"]["parameters"].append(
        {"name": "authorization", "in": "header", "schema": {"type": "string"}}
    )
    assert missing_examples(broken) == [
        "POST /generate: request body application/json",
        "POST /generate: 422 application/json",
    ]
    assert unsecured(broken, authenticated_operations(app)) == [
        "POST /generate: no bearer security",
        "GET /templates: raw authorization header",
    ]


def test_swagger_ui_offers_authorize_with_the_served_document(app: FastAPI) -> None:
    """/docs loads /openapi.json, whose bearer scheme is what the Authorize dialog offers (no lifespan: no I/O)."""
    client = TestClient(app)
    page = client.get("/docs")
    served = client.get("/openapi.json").json()
    assert page.status_code == 200
    assert "/openapi.json" in page.text
    assert served["components"]["securitySchemes"][BEARER]["scheme"] == "bearer"
    assert served["paths"]["/generate"]["post"]["security"] == [{BEARER: []}]


def test_error_examples_show_the_codes_their_description_names(doc: dict[str, Any]) -> None:
    """`email_taken` in the description: that code's example; no code named: the status's usual one."""
    register = doc["paths"]["/auth/register"]["post"]["responses"]
    assert list(register["409"]["content"]["application/json"]["examples"]) == ["email_taken"]
    assert list(register["422"]["content"]["application/json"]["examples"]) == [
        "invalid_email",
        "weak_password",
    ]
    shown = register["422"]["content"]["application/json"]["examples"]["weak_password"]["value"]["error"]
    assert shown["details"]["reason"] == "too_short"
    usage = doc["paths"]["/me/usage"]["get"]["responses"]["503"]["content"]["application/json"]
    assert usage["example"]["error"]["code"] == "service_unavailable"
