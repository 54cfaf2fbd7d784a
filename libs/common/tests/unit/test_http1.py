"""The relay client against a real uvicorn app on loopback: framing, reuse, stale connections, errors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from llmts_common.http1 import ConnectError, Http1Pool, ReadTimeout


def _app() -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, object]:
        return {
            "body": (await request.body()).decode(),
            "query": request.url.query,
            "auth": request.headers.get("authorization"),
        }

    @app.get("/chunked")
    async def chunked() -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            for i in range(3):
                yield f"part{i};".encode()

        return StreamingResponse(parts())

    @app.get("/empty")
    async def empty() -> Response:
        return Response(status_code=204)

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(5)
        return {}

    return app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def origin() -> AsyncIterator[str]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(_app(), host="127.0.0.1", port=port, log_config=None, timeout_keep_alive=1)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 -- uvicorn offers no event to await
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def test_body_query_and_headers_go_through_and_the_connection_is_reused(origin: str) -> None:
    pool = Http1Pool(origin, timeout=5)
    for _ in range(3):
        resp = await pool.request(
            "POST",
            "/echo?a=1&b=x%20y",
            [("authorization", "Bearer t"), ("content-type", "text/plain")],
            b"hi",
        )
        assert resp.status == 200
        assert resp.body == b'{"body":"hi","query":"a=1&b=x%20y","auth":"Bearer t"}'
        assert (b"content-type", b"application/json") in resp.headers
    assert len(pool._idle) == 1
    await pool.aclose()


async def test_chunked_and_bodyless_answers(origin: str) -> None:
    pool = Http1Pool(origin, timeout=5)
    assert (await pool.request("GET", "/chunked", [])).body == b"part0;part1;part2;"
    empty = await pool.request("GET", "/empty", [])
    assert (empty.status, empty.body) == (204, b"")
    await pool.aclose()


async def test_an_idle_connection_closed_by_the_server_is_not_used_again(origin: str) -> None:
    pool = Http1Pool(origin, timeout=5)
    assert (await pool.request("GET", "/empty", [])).status == 204
    await asyncio.sleep(1.5)  # past the server's keep-alive timeout: it closes the idle connection
    assert (await pool.request("GET", "/empty", [])).status == 204
    await pool.aclose()


async def test_errors_are_named() -> None:
    with pytest.raises(ConnectError):
        await Http1Pool(f"http://127.0.0.1:{_free_port()}", timeout=5).request("GET", "/", [])


async def test_timeout(origin: str) -> None:
    with pytest.raises(ReadTimeout):
        await Http1Pool(origin, timeout=0.2).request("GET", "/slow", [])


def test_header_injection_is_refused() -> None:
    pool = Http1Pool("http://127.0.0.1:9", timeout=1)
    with pytest.raises(ValueError, match="CR or LF"):
        asyncio.run(pool.request("GET", "/", [("x-a", "b\r\nx-evil: 1")]))
