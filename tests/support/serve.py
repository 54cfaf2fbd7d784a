"""Serve an ASGI app on a free port and wait until it is ready; or run a service as its own process.

- ``serve(app)``: uvicorn as a task of the running event loop (lifespan on), ``async with`` yields the base URL.
- ``ThreadedServer(app)``: uvicorn in a background thread (lifespan off, for fakes); ``stop()`` then ``start()``
  rebinds the same port.
- ``ServiceProcess(module, env, log)``: ``python -m <module>``, ``await wait_ready(url)`` polls ``/ready``;
  ``kill9()`` for crash tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import httpx
import uvicorn

from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]


@contextlib.asynccontextmanager
async def serve(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, lifespan: str = "on", within: float = 60.0
) -> AsyncIterator[str]:
    """Serve ``app`` in this event loop until the block ends; yields ``http://host:port`` once it is started."""
    port = port or free_port(host)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        lifespan=lifespan,
        access_log=False,  # type: ignore[arg-type]
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name=f"serve:{port}")
    deadline = time.monotonic() + within
    while not server.started:
        if task.done():
            raise RuntimeError(f"the app on port {port} did not start: {task.exception()!r}")
        if time.monotonic() > deadline:
            task.cancel()
            raise RuntimeError(f"the app on port {port} did not start within {within} s")
        await asyncio.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)


class ThreadedServer:
    """uvicorn in a daemon thread on a fixed or free port; ``start()`` returns once it accepts connections."""

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

    def url(self, path: str) -> str:
        return self.base_url + path

    def start(self) -> ThreadedServer:
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
            target=server.run, kwargs={"sockets": [sock]}, name=f"serve:{self.port}", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + self.startup_timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError(f"server on port {self.port} did not start")
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

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ServiceProcess:
    """``python -m <module>`` with ``env``, its output appended to ``log``."""

    def __init__(self, module: str, env: dict[str, str], log: Path) -> None:
        self.module = module
        self.env = env
        self.log = log
        self.p: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None

    def start(self) -> None:
        self._out = self.log.open("ab")
        self.p = subprocess.Popen(
            [sys.executable, "-m", self.module],
            env=self.env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )

    def alive(self) -> bool:
        return self.p is not None and self.p.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def kill9(self) -> None:
        assert self.p is not None
        self.p.send_signal(signal.SIGKILL)
        self.p.wait(10)
        self._close_log()

    def stop(self, timeout: float = 20.0) -> None:
        if self.alive():
            assert self.p is not None
            self.p.terminate()
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self._close_log()

    def _close_log(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    async def wait_ready(self, base_url: str, *, path: str = "/ready", within: float = 60.0) -> None:
        """Poll ``base_url + path`` until it answers 200; fails with the log's tail if the process exits first."""
        deadline = time.monotonic() + within
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                assert self.alive(), f"{self.module} exited:\n{self.log_tail()}"
                with contextlib.suppress(httpx.HTTPError):
                    r = await client.get(base_url + path, timeout=2)
                    if r.status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise AssertionError(f"{self.module} not ready in {within} s:\n{self.log_tail()}")
