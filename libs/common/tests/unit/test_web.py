from __future__ import annotations

import json

import httpx
import pytest
from pydantic import BaseModel

from llmts_common.errors import Conflict, TooManyRequests
from llmts_common.web import create_app, json_depth_exceeds


class Body(BaseModel):
    name: str
    count: int


def _app() -> httpx.AsyncClient:
    app = create_app(service="t", title="t", max_body_bytes=2048, max_json_depth=8)

    @app.post("/things")
    async def things(body: Body) -> dict[str, str]:
        return {"ok": body.name}

    @app.get("/conflict")
    async def conflict() -> None:
        raise Conflict("already there", details={"id": 1})

    @app.get("/limited")
    async def limited() -> None:
        raise TooManyRequests("slow down", retry_after=7)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app, raise_app_exceptions=False), base_url="http://t"
    )


async def test_validation_error_has_the_error_body() -> None:
    async with _app() as c:
        r = await c.post("/things", json={"name": "x"})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "validation_error"
    assert "count" in err["message"]
    assert isinstance(err["details"], list)


async def test_app_errors_and_unknown_routes() -> None:
    async with _app() as c:
        r = await c.get("/conflict")
        assert r.status_code == 409
        assert r.json() == {"error": {"code": "conflict", "message": "already there", "details": {"id": 1}}}
        r = await c.get("/limited")
        assert r.status_code == 429
        assert r.headers["retry-after"] == "7"
        r = await c.get("/nowhere")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"


async def test_unexpected_error_is_500_without_internals() -> None:
    async with _app() as c:
        r = await c.get("/boom")
    assert r.status_code == 500
    assert "secret" not in r.text
    assert r.json()["error"]["code"] == "internal_error"


async def test_oversized_body_is_413() -> None:
    async with _app() as c:
        r = await c.post(
            "/things",
            content=b'{"name": "' + b"x" * 5000 + b'", "count": 1}',
            headers={"content-type": "application/json"},
        )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


async def test_deeply_nested_json_is_422() -> None:
    body = "[" * 50 + "]" * 50
    async with _app() as c:
        r = await c.post("/things", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "json_too_deep"


async def test_malformed_json_is_422() -> None:
    async with _app() as c:
        r = await c.post("/things", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422


async def test_health_ready_and_correlation_id() -> None:
    async with _app() as c:
        r = await c.get("/health", headers={"x-correlation-id": "abc"})
        assert r.json() == {"status": "ok"}
        assert r.headers["x-correlation-id"] == "abc"
        r = await c.get("/ready")
        assert r.status_code == 200
        assert r.json()["ready"] is True


@pytest.mark.parametrize(
    ("body", "limit", "expected"),
    [
        (b"[[[]]]", 3, False),
        (b"[[[[]]]]", 3, True),
        (json.dumps({"a": "[[[[[[[[[["}).encode(), 2, False),
        (b'{"a": {"b": {"c": 1}}}', 2, True),
    ],
)
def test_json_depth(body: bytes, limit: int, expected: bool) -> None:
    assert json_depth_exceeds(body, limit) is expected
