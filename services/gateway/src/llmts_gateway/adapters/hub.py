"""In-process fan-out of generation/export events to the WebSocket and SSE clients watching a job."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any


class EventHub:
    def __init__(self, queue_size: int = 1000) -> None:
        self._subs: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._queue_size = queue_size

    def subscribe(self, key: str) -> asyncio.Queue[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self._queue_size)
        self._subs[key].add(q)
        return q

    def unsubscribe(self, key: str, q: asyncio.Queue[dict[str, Any]]) -> None:
        subs = self._subs.get(key)
        if subs is not None:
            subs.discard(q)
            if not subs:
                self._subs.pop(key, None)

    def publish(self, key: str, event: dict[str, Any]) -> int:
        delivered = 0
        for q in list(self._subs.get(key, ())):
            if q.full():  # a slow client loses the oldest event, never blocks the consumer
                q.get_nowait()
            q.put_nowait(event)
            delivered += 1
        return delivered

    def watchers(self, key: str) -> int:
        return len(self._subs.get(key, ()))
