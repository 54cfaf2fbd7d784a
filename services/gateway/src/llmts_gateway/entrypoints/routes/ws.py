"""WebSocket ``/ws/generate/{job_id}``: the current state, then every event of the job until it ends.

Authenticate with ``?token=<access token>`` or, within 10 s of connecting, a first message
``{"token": "<access token>"}`` (also accepted: the bare token or ``"Bearer <token>"``). Messages sent:
``{"type": "snapshot", "data": <job status>}``, then each event ``{id, type, time, data}``; the server closes
with 1000 after the terminal event. Errors: ``{"type": "error", "error": {code, message}}`` then close 4401
(authentication), 4404 (unknown job, or another user's), 1011 (upstream unavailable).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from llmts_common.errors import AppError
from llmts_gateway.deps import GatewayContext
from llmts_gateway.handlers import JobWatch

router = APIRouter(tags=["generation"])

AUTH_TIMEOUT_S = 10.0


async def _first_message_token(ws: WebSocket) -> str | None:
    try:
        raw = await asyncio.wait_for(ws.receive_text(), timeout=AUTH_TIMEOUT_S)
    except (TimeoutError, WebSocketDisconnect):
        return None
    raw = raw.strip()
    if raw.startswith("{"):
        with contextlib.suppress(ValueError):
            msg = json.loads(raw)
            if isinstance(msg, dict):
                value = msg.get("token") or msg.get("access_token") or msg.get("authorization")
                raw = str(value or "")
    if raw.lower().startswith("bearer "):
        raw = raw[7:].strip()
    return raw or None


async def _fail(ws: WebSocket, code: int, err_code: str, message: str) -> None:
    with contextlib.suppress(Exception):
        await ws.send_json({"type": "error", "error": {"code": err_code, "message": message}})
        await ws.close(code=code)


@router.websocket("/ws/generate/{job_id}")
async def job_socket(ws: WebSocket, job_id: str) -> None:
    ctx: GatewayContext = ws.app.state.ctx
    await ws.accept()
    token = ws.query_params.get("token") or await _first_message_token(ws)
    if not token:
        await _fail(ws, 4401, "unauthorized", "send the access token as ?token= or as the first message")
        return
    try:
        user = await ctx.verifier.verify(token)
    except AppError as exc:
        await _fail(ws, 4401, exc.code, exc.message)
        return
    if ctx.jobs is None:
        await _fail(ws, 1011, "service_unavailable", "the generation API is not available")
        return
    watch = JobWatch(job_id, user_id=user.user_id, token=token, deps=ctx.jobs)
    try:
        snapshot = await watch.open()
    except AppError as exc:
        await _fail(ws, 4404 if exc.status_code == 404 else 1011, exc.code, exc.message)
        return

    async def drain_client() -> None:  # notice a client that goes away; ignore what it sends
        with contextlib.suppress(Exception):
            while True:
                await ws.receive_text()

    reader = asyncio.create_task(drain_client())
    try:
        async for event in watch.events(snapshot):
            if reader.done():
                return
            payload: dict[str, Any] = (
                {"type": "snapshot", "data": event["data"]} if event.get("type") == "snapshot" else event
            )
            await ws.send_text(json.dumps(payload, default=str))
        await ws.close(code=1000)
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        reader.cancel()
        watch.close()
