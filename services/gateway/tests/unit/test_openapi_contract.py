"""The gateway's OpenAPI document agrees with each service's on everything they share.

Both sides declare their bodies, answers and query parameters with the ``llmts_api`` models, so for every component
schema present in both documents the JSON schemas must be equal, and every operation both expose must take the same
query parameters. A model re-declared (or changed) on one side only shows up here as a difference. Building the
apps does no I/O (clients connect lazily), so this stays a unit test.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from fastapi import FastAPI

from llmts_gateway.bootstrap import bootstrap as bootstrap_gateway

# Per service: components and operations that must be shared, so the comparison can never be vacuous.
EXPECTED: dict[str, tuple[set[str], set[tuple[str, str]]]] = {
    "auth": (
        {"UserCreate", "UserPublic", "LoginRequest", "RefreshRequest", "TokenPairPublic", "Jwks"},
        {("post", "/auth/register"), ("get", "/auth/oauth/{provider}/callback")},
    ),
    "catalog": (
        {"ModelsPublic", "ModelPublic", "ModelPricingPublic", "ProvidersPublic", "ProviderTestRequest"},
        {("get", "/providers/models"), ("get", "/providers/models/{model_id}")},
    ),
    "templates": (
        {"TemplateCreate", "TemplatePublic", "TemplatesPublic", "PreviewRequest", "TemplateDiffPublic"},
        {
            ("get", "/templates"),
            ("put", "/templates/{template_id}"),
            ("get", "/templates/{template_id}/diff"),
        },
    ),
    "exporter": (
        {"ExportPublic", "ExportsPublic", "ExportLinks"},
        {("get", "/exports"), ("get", "/downloads/{export_id}")},
    ),
}


def _service_openapi(name: str) -> dict[str, Any]:
    module = importlib.import_module(f"llmts_{name}.bootstrap")
    built = module.bootstrap()
    app: FastAPI = built[0] if isinstance(built, tuple) else built
    return app.openapi()


@pytest.fixture(scope="module")
def gateway_openapi() -> dict[str, Any]:
    app, _, _ = bootstrap_gateway()
    return app.openapi()


def _components(doc: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = doc.get("components", {}).get("schemas", {})
    return schemas


def _query_parameters(operation: dict[str, Any]) -> dict[str, Any]:
    return {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}


def _shared_operations(a: dict[str, Any], b: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, operations in a["paths"].items()
        for method in operations
        if method in b["paths"].get(path, {})
    }


def schema_differences(gateway: dict[str, Any], service: dict[str, Any]) -> list[str]:
    """Names of the shared components whose schemas differ, and shared operations whose query differs."""
    ours, theirs = _components(gateway), _components(service)
    out = [f"component {n}" for n in sorted(set(ours) & set(theirs)) if ours[n] != theirs[n]]
    for method, path in sorted(_shared_operations(gateway, service)):
        mine = _query_parameters(gateway["paths"][path][method])
        other = _query_parameters(service["paths"][path][method])
        if mine != other:
            names = sorted(n for n in set(mine) | set(other) if mine.get(n) != other.get(n))
            out.append(f"query of {method.upper()} {path}: {names}")
    return out


@pytest.mark.parametrize("service", sorted(EXPECTED))
def test_gateway_and_service_documents_agree(gateway_openapi: dict[str, Any], service: str) -> None:
    doc = _service_openapi(service)
    components, operations = EXPECTED[service]
    shared = set(_components(gateway_openapi)) & set(_components(doc))
    assert components <= shared, f"not shared any more: {sorted(components - shared)}"
    assert operations <= _shared_operations(gateway_openapi, doc)
    assert schema_differences(gateway_openapi, doc) == []


def test_a_drifted_copy_is_reported() -> None:
    """The comparison itself notices a changed field, a changed query parameter and nothing else."""
    service = {
        "paths": {
            "/x": {"get": {"parameters": [{"name": "limit", "in": "query", "schema": {"maximum": 500}}]}}
        },
        "components": {"schemas": {"A": {"properties": {"n": {"type": "integer"}}}, "B": {"type": "object"}}},
    }
    gateway = {
        "paths": {
            "/x": {"get": {"parameters": [{"name": "limit", "in": "query", "schema": {"maximum": 100}}]}}
        },
        "components": {"schemas": {"A": {"properties": {"n": {"type": "string"}}}, "B": {"type": "object"}}},
    }
    assert schema_differences(gateway, service) == ["component A", "query of GET /x: ['limit']"]
    assert schema_differences(service, service) == []
