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
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class RunningFake:
    def __init__(
        self, app: Any, *, host: str = "127.0.0.1", port: int = 0, startup_timeout_s: float = 10.0
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.startup_timeout_s = startup_timeout_s
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state(self) -> Any:
        return getattr(self.app.state, "fake", None)

    def url(self, path: str) -> str:
        return self.base_url + path

    def start(self) -> RunningFake:
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1
        )
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # not the main thread
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"fake:{self.port}", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + self.startup_timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError(f"fake server on port {self.port} did not start")
            time.sleep(0.01)
        sock.close()  # uvicorn holds its own dup of the listening socket
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=5)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> RunningFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


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
