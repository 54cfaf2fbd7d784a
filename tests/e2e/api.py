"""Client-side helpers for the end-to-end journeys, the security suite and the chaos scenarios: everything goes
through the gateway's public API (plus the fake providers' control endpoints and Kafka, read-only)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

TERMINAL_STATUSES = frozenset({"completed", "completed_with_errors", "stopped", "failed", "cancelled"})
TERMINAL_EVENTS = frozenset(
    {"llmts.generation.completed", "llmts.generation.failed", "llmts.generation.cancelled"}
)
EXPORT_FORMATS = ("json", "jsonl", "csv", "xlsx", "pdf", "md", "html", "xml", "txt", "parquet")
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def openapi_paths(client: httpx.AsyncClient) -> dict[str, Any]:
    spec = (await client.get("/openapi.json")).json()
    paths: dict[str, Any] = spec.get("paths", {})
    return paths


async def missing_routes(client: httpx.AsyncClient, wanted: Iterable[tuple[str, str]]) -> list[str]:
    """``(METHOD, path)`` pairs the gateway's OpenAPI does not document."""
    paths = await openapi_paths(client)
    return [f"{m} {p}" for m, p in wanted if m.lower() not in paths.get(p, {})]


async def require_routes(client: httpx.AsyncClient, wanted: Iterable[tuple[str, str]]) -> None:
    """Fail (never skip) when the gateway does not serve a route the test goes through."""
    missing = await missing_routes(client, wanted)
    assert not missing, f"the gateway's OpenAPI does not document these routes: {missing}"


# --- generation -------------------------------------------------------------------------------------------------


@dataclass
class Watch:
    """What a WebSocket watcher saw."""

    events: list[dict[str, Any]] = field(default_factory=list)
    terminal: dict[str, Any] | None = None
    reconnects: int = 0

    def types(self) -> list[str]:
        return [str(e.get("type")) for e in self.events]


def event_type(msg: dict[str, Any]) -> str:
    return str(msg.get("type") or msg.get("event") or "")


def is_terminal_message(msg: dict[str, Any]) -> bool:
    if event_type(msg) in TERMINAL_EVENTS:
        return True
    data = msg.get("data") if isinstance(msg.get("data"), dict) else {}
    status = msg.get("status") or data.get("status")
    return event_type(msg) in ("", "snapshot") and status in TERMINAL_STATUSES


def ws_url(gateway: str, job_id: str, token: str) -> str:
    parts = urlsplit(gateway)
    return f"ws://{parts.netloc}/ws/generate/{job_id}?token={token}"


async def watch_ws(
    gateway: str,
    job_id: str,
    token: str,
    *,
    within: float = 120.0,
    on_message: Any = None,
) -> Watch:
    """Follow a job over the WebSocket until a terminal message, reconnecting when the socket drops."""
    import websockets

    watch = Watch()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            async with websockets.connect(ws_url(gateway, job_id, token), open_timeout=5) as ws:
                while time.monotonic() < deadline:
                    raw = await asyncio.wait_for(ws.recv(), timeout=max(0.1, deadline - time.monotonic()))
                    msg = json.loads(raw)
                    watch.events.append(msg)
                    if on_message is not None:
                        await on_message(msg)
                    if is_terminal_message(msg) or event_type(msg) == "error":
                        watch.terminal = msg
                        return watch
        except (OSError, TimeoutError) as exc:
            if isinstance(exc, TimeoutError | asyncio.TimeoutError) and time.monotonic() >= deadline:
                break
        except websockets.exceptions.WebSocketException:
            pass
        watch.reconnects += 1
        await asyncio.sleep(0.3)
    return watch


async def _poll_status(
    client: httpx.AsyncClient,
    path: str,
    headers: dict[str, str],
    done: frozenset[str],
    *,
    within: float,
    what: str,
) -> dict[str, Any]:
    """Poll ``GET path`` until its ``status`` is in ``done`` (tolerates 5xx/connection errors during chaos)."""
    deadline = time.monotonic() + within
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            r = await client.get(path, headers=headers)
            if r.status_code == 200:
                last = r.json()
                if last.get("status") in done:
                    return last
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.25)
    raise AssertionError(f"{what} after {within}s: {last}")


async def wait_job(
    client: httpx.AsyncClient,
    job_id: str,
    headers: dict[str, str],
    *,
    within: float = 120.0,
) -> dict[str, Any]:
    """Poll ``GET /generate/{id}`` until the job is terminal."""
    return await _poll_status(
        client,
        f"/generate/{job_id}",
        headers,
        TERMINAL_STATUSES,
        within=within,
        what=f"job {job_id} not terminal",
    )


async def all_items(
    client: httpx.AsyncClient, job_id: str, headers: dict[str, str], *, include_rejected: bool = False
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    offset = 0
    while True:
        params: dict[str, Any] = {"limit": 1000, "offset": offset}
        if include_rejected:
            params["include"] = "rejected"
        r = await client.get(f"/generate/{job_id}/result", headers=headers, params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        items.extend(page["items"])
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return items


async def wait_export(
    client: httpx.AsyncClient,
    export_id: str,
    headers: dict[str, str],
    *,
    within: float = 120.0,
) -> dict[str, Any]:
    return await _poll_status(
        client,
        f"/exports/{export_id}",
        headers,
        frozenset({"ready", "failed"}),
        within=within,
        what=f"export {export_id} not finished",
    )


# --- fake provider ---------------------------------------------------------------------------------------------


async def fake_config(fake_url: str, **config: Any) -> None:
    async with httpx.AsyncClient(timeout=10) as c:
        r = await c.post(f"{fake_url}/_fake/config", json=config)
        r.raise_for_status()


async def fake_stats(fake_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as c:
        r = await c.get(f"{fake_url}/_fake/stats")
        r.raise_for_status()
        stats: dict[str, Any] = r.json()
        return stats


async def fake_reset(fake_url: str) -> None:
    async with httpx.AsyncClient(timeout=10) as c:
        (await c.post(f"{fake_url}/_fake/reset")).raise_for_status()


# --- Kafka (read-only) -------------------------------------------------------------------------------------------


async def job_events(
    job_id: str,
    *,
    topic: str = "generation.events",
    until: frozenset[str] = TERMINAL_EVENTS,
    within: float = 30.0,
    subject_field: str = "subject",
) -> list[dict[str, Any]]:
    """Every envelope on ``topic`` whose subject is ``job_id``, read from the beginning, until one of ``until``
    has been seen and the end of the topic was reached (or ``within`` seconds)."""
    from aiokafka import AIOKafkaConsumer

    from llmts_common.kafka_security import kafka_client_options

    consumer = AIOKafkaConsumer(
        topic,
        **kafka_client_options(),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=200,
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + within
        seen_terminal = False
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batches.values():
                for record in records:
                    if record.key is not None and record.key.decode(errors="replace") != job_id:
                        continue
                    try:
                        env = json.loads(record.value)
                    except ValueError:
                        continue
                    if env.get(subject_field) == job_id or (env.get("data") or {}).get("job_id") == job_id:
                        found.append(env)
                        if env.get("type") in until:
                            seen_terminal = True
            if seen_terminal and not batches:
                # caught up: check every assigned partition reached its end
                ends = await consumer.end_offsets(list(consumer.assignment()))
                positions = {tp: await consumer.position(tp) for tp in ends}
                if all(positions[tp] >= off for tp, off in ends.items()):
                    break
        return found
    finally:
        await consumer.stop()


def dedup_envelopes(envelopes: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """At-least-once delivery: drop redeliveries by envelope id; return (unique, duplicates)."""
    seen: set[str] = set()
    unique: list[dict[str, Any]] = []
    for env in envelopes:
        if env.get("id") in seen:
            continue
        seen.add(str(env.get("id")))
        unique.append(env)
    return unique, len(envelopes) - len(unique)
