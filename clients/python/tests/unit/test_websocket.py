"""``watch`` over a real WebSocket (a local websockets server on a free loopback port): the token is the first
message, events stop at the terminal one, an error message is raised — sync and async clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from clients.python.tests.unit.fake_gateway import job_events
from websockets.asyncio.server import ServerConnection, serve

from llmts_client import ApiError, AsyncClient, Client


@asynccontextmanager
async def ws_server(tokens: list[str], *, error: bool = False) -> AsyncIterator[str]:
    async def handler(conn: ServerConnection) -> None:
        first = json.loads(await conn.recv())
        tokens.append(first["token"])
        assert conn.request is not None
        assert conn.request.path == "/ws/generate/j1"
        if error:
            await conn.send(
                json.dumps({"type": "error", "error": {"code": "job_not_found", "message": "no job"}})
            )
            await conn.close(4404)
            return
        for event in job_events():
            await conn.send(json.dumps(event))
        await conn.close()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"http://127.0.0.1:{port}"


async def test_async_watch_sends_the_token_first_and_stops_at_the_terminal_event() -> None:
    tokens: list[str] = []
    async with ws_server(tokens) as url, AsyncClient(url, access_token="tok-1") as api:
        types = [e.type async for e in api.watch("j1", transport="websocket")]
    assert tokens == ["tok-1"]
    assert types == ["snapshot", "started", "item_generated", "progress", "item_generated", "completed"]


async def test_sync_watch_over_the_websocket() -> None:
    tokens: list[str] = []
    async with ws_server(tokens) as url:

        def run() -> list[str]:
            with Client(url, access_token="tok-2") as api:
                return [e.type for e in api.watch("j1", transport="websocket")]

        types = await asyncio.to_thread(run)
    assert tokens == ["tok-2"]
    assert types[-1] == "completed"
    assert "progress" in types


async def test_an_error_message_is_raised() -> None:
    async with ws_server([], error=True) as url, AsyncClient(url, access_token="tok") as api:
        with pytest.raises(ApiError) as caught:
            _ = [e async for e in api.watch("j1", transport="websocket")]
    assert (caught.value.status, caught.value.code) == (404, "job_not_found")
