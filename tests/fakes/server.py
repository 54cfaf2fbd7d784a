"""Run a fake (any ASGI app) with uvicorn in a background thread on a free 127.0.0.1 port.

    with RunningFake(create_app(state)) as fake:       # or: with start_fake(app) as base_url:
        httpx.get(fake.base_url + "/api/v1/models")

    async with start_fake_async(app) as fake: ...       # same server, awaited start/stop

``fake.stop()`` then requests give "connection refused" (useful for unreachable-provider tests);
``fake.start()`` again rebinds the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

from tests.support.serve import ThreadedServer


class RunningFake(ThreadedServer):
    """A fake on ``tests.support.serve.ThreadedServer``; ``state`` is the fake's ``FakeState`` (or ``None``)."""

    @property
    def state(self) -> Any:
        return getattr(self.app.state, "fake", None)

    def start(self) -> RunningFake:
        super().start()
        return self

    def __enter__(self) -> RunningFake:
        return self.start()


@contextlib.contextmanager
def start_fake(app: Any, *, port: int = 0) -> Iterator[str]:
    """Sync context manager yielding the base URL (``http://127.0.0.1:<port>``)."""
    with RunningFake(app, port=port) as fake:
        yield fake.base_url


@contextlib.asynccontextmanager
async def start_fake_async(app: Any, *, port: int = 0) -> AsyncIterator[RunningFake]:
    """Async variant: start/stop run in a worker thread so the caller's event loop is never blocked."""
    fake = RunningFake(app, port=port)
    await asyncio.to_thread(fake.start)
    try:
        yield fake
    finally:
        await asyncio.to_thread(fake.stop)
