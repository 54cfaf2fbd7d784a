from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import Request, Response
from pydantic import BaseModel

from llmts_common.errors import Conflict, TooManyRequests
from llmts_common.web import BODYLESS_MAX_BYTES, create_app, is_json_media_type, json_depth_exceeds


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
        r = await c.get("/conflict", headers={"x-correlation-id": "cid-1"})
        assert r.status_code == 409
        assert r.json() == {
            "error": {
                "code": "conflict",
                "message": "already there",
                "details": {"id": 1},
                "correlation_id": "cid-1",
            }
        }
        r = await c.get("/limited")
        assert r.status_code == 429
        assert r.headers["retry-after"] == "7"
        r = await c.get("/nowhere")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"


async def test_unexpected_error_is_500_without_internals() -> None:
    async with _app() as c:
        r = await c.get("/boom", headers={"x-correlation-id": "boom-1"})
    assert r.status_code == 500
    assert "secret" not in r.text
    assert r.json()["error"]["code"] == "internal_error"
    assert r.json()["error"]["correlation_id"] == "boom-1"
    assert r.headers["x-correlation-id"] == "boom-1"


async def test_a_relayed_correlation_id_header_is_not_doubled() -> None:
    app = create_app(service="t", title="t")

    @app.get("/relayed")
    async def relayed() -> Response:
        return Response(b"{}", headers={"x-correlation-id": "upstream-copy"})

    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.get("/relayed", headers={"x-correlation-id": "c-1"})
    assert r.headers.get_list("x-correlation-id") == ["c-1"]


async def test_every_error_body_carries_the_correlation_id() -> None:
    async with _app() as c:
        generated = await c.get("/nowhere")
        validation = await c.post("/things", json={"name": "x"}, headers={"x-correlation-id": "v-1"})
        too_large = await c.post("/things", content=b"x" * 5000, headers={"x-correlation-id": "big-1"})
    assert generated.json()["error"]["correlation_id"] == generated.headers["x-correlation-id"]
    assert validation.json()["error"]["correlation_id"] == "v-1"
    assert too_large.json()["error"]["correlation_id"] == "big-1"


async def _chunks(size: int, chunk: int = 1024) -> AsyncIterator[bytes]:
    for start in range(0, size, chunk):
        yield b"x" * min(chunk, size - start)


@pytest.mark.parametrize("method", ["GET", "DELETE", "HEAD", "OPTIONS"])
async def test_bodyless_methods_refuse_a_chunked_body_past_the_small_limit(method: str) -> None:
    seen: list[int] = []
    app = create_app(service="t", title="t", max_body_bytes=1_000_000, max_json_depth=8)

    @app.api_route("/echo", methods=[method])
    async def echo(request: Request) -> dict[str, int]:
        seen.append(len(await request.body()))
        return {"size": seen[-1]}

    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        big = await c.request(method, "/echo", content=_chunks(BODYLESS_MAX_BYTES + 1))
        declared = await c.request(
            method, "/echo", content=b"x" * (BODYLESS_MAX_BYTES + 1), headers={"content-length": "9000"}
        )
        small = await c.request(method, "/echo", content=_chunks(100))
    assert big.status_code == 413
    assert declared.status_code == 413
    if method != "HEAD":
        assert big.json()["error"]["code"] == "payload_too_large"
    assert small.status_code == 200
    assert seen == [100]  # the refused bodies never reached the route


async def test_post_chunked_body_is_bounded_by_the_body_limit() -> None:
    async with _app() as c:
        r = await c.post("/things", content=_chunks(5000))
    assert r.status_code == 413


@pytest.mark.parametrize(
    "content_type", ["application/JSON", "Application/Json; charset=utf-8", "application/problem+json", ""]
)
async def test_json_depth_is_checked_whatever_the_content_type_spelling(content_type: str) -> None:
    body = "[" * 50 + "]" * 50
    headers = {"content-type": content_type} if content_type else {}
    async with _app() as c:
        r = await c.post("/things", content=body, headers=headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "json_too_deep"


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", True),
        ("APPLICATION/JSON;charset=UTF-8", True),
        ("application/vnd.api+JSON", True),
        ("text/plain", False),
        ("application/x-ndjson", False),
    ],
)
def test_is_json_media_type(content_type: str, expected: bool) -> None:
    assert is_json_media_type(content_type) is expected


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
