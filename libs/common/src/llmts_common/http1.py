"""A lean keep-alive HTTP/1.1 client pool for one origin: the gateway's relay to the services behind it.

Why not httpx here: on a relayed request httpx/httpcore cost about as much CPU as everything else in the gateway
together — the pool re-checks every pooled connection's socket on each request and response (O(connections)),
plus its anyio/h11 layers. This client is an ``asyncio.Protocol`` per connection and a LIFO list of idle ones:
a closed idle connection is noticed by ``connection_lost`` (no polling), a request is one ``write`` and the answer
is parsed from one buffer (``Content-Length``, ``chunked`` or read-until-close framing).

Scope: plain HTTP to services we run (no TLS, no proxies, no redirects, no cookies), whole bodies in memory — it is
for small request/response relays; streaming downloads stay on httpx. A request that fails on a REUSED connection
before any byte of the answer arrived (the server closed it while idle) is sent once more on a fresh connection
when its method is idempotent. Errors are ``UpstreamError`` subclasses named like httpx's (``ConnectError``,
``ReadTimeout``, ``RemoteProtocolError``), so callers can report the kind.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

_MAX_HEAD = 64 * 1024
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_NO_BODY_STATUS = frozenset({204, 304})


class UpstreamError(Exception):
    """The exchange with the upstream failed (no usable answer)."""


class ConnectError(UpstreamError):
    pass


class ReadTimeout(UpstreamError):
    pass


class RemoteProtocolError(UpstreamError):
    pass


class _StaleConnection(RemoteProtocolError):
    """A reused connection was closed before any byte of the answer: safe to retry an idempotent request."""


@dataclass(slots=True)
class Http1Response:
    status: int
    headers: list[tuple[bytes, bytes]]  # as received, names lower-cased, duplicates kept
    body: bytes


class _Connection(asyncio.Protocol):
    """One TCP connection; one request in flight at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._waiter: asyncio.Future[Http1Response] | None = None
        self._buf = bytearray()
        self._received = 0
        self._head_only = False
        # state of the answer being parsed
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._mode = ""  # "", "length", "chunked", "close"
        self._remaining = 0
        self._chunks: list[bytes] = []
        self.keep_alive = True

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        self._received += len(data)
        if self._waiter is None or self._waiter.done():
            self._abort()  # bytes nobody asked for: the connection cannot be trusted any more
            return
        self._buf += data
        try:
            self._parse()
        except (ValueError, IndexError) as exc:
            self._fail(RemoteProtocolError(f"malformed HTTP answer: {exc}"))

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._mode == "close" and self._status:
            self._complete(bytes(self._buf))
        elif self._received == 0:
            waiter.set_exception(_StaleConnection("connection closed before the answer"))
        else:
            waiter.set_exception(RemoteProtocolError("connection closed in the middle of the answer"))

    # -- use
    def send(self, data: bytes, *, head_only: bool) -> asyncio.Future[Http1Response]:
        assert self.transport is not None
        self._waiter = self.loop.create_future()
        self._buf.clear()
        self._received = 0
        self._head_only = head_only
        self._status = 0
        self._headers = []
        self._mode = ""
        self._chunks = []
        self.transport.write(data)
        return self._waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        self._abort()

    def _complete(self, body: bytes) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(Http1Response(self._status, self._headers, body))

    def _parse(self) -> None:
        buf = self._buf
        while not self._mode:  # the head (skipping interim 1xx answers)
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_HEAD:
                    raise ValueError("head too large")
                return
            lines = bytes(buf[:end]).split(b"\r\n")
            del buf[: end + 4]
            version, status = lines[0].split(b" ", 2)[:2]
            code = int(status)
            if 100 <= code < 200:
                continue
            headers: list[tuple[bytes, bytes]] = []
            length = -1
            chunked = False
            connection = b""
            for line in lines[1:]:
                name, sep, value = line.partition(b":")
                if not sep:
                    raise ValueError("header line without a colon")
                name = name.strip().lower()
                value = value.strip()
                headers.append((name, value))
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    chunked = b"chunked" in value.lower()
                elif name == b"connection":
                    connection = value.lower()
            self._status, self._headers = code, headers
            if version == b"HTTP/1.1":
                self.keep_alive = b"close" not in connection
            else:
                self.keep_alive = b"keep-alive" in connection
            if self._head_only or code in _NO_BODY_STATUS:
                self._mode = "done"
            elif chunked:
                self._mode = "chunked"
            elif length >= 0:
                self._mode, self._remaining = "length", length
            else:
                self._mode, self.keep_alive = "close", False
        if self._mode == "done":
            self._finish(b"")
        elif self._mode == "length":
            if len(buf) >= self._remaining:
                body = bytes(buf[: self._remaining])
                del buf[: self._remaining]
                self._finish(body)
        elif self._mode == "chunked":
            self._parse_chunks()

    def _parse_chunks(self) -> None:
        buf = self._buf
        while True:
            eol = buf.find(b"\r\n")
            if eol < 0:
                return
            size = int(bytes(buf[:eol]).split(b";", 1)[0].strip(), 16)
            if size == 0:
                rest = buf[eol + 2 :]
                if rest[:2] == b"\r\n":
                    del buf[: eol + 4]
                else:
                    trailers_end = rest.find(b"\r\n\r\n")
                    if trailers_end < 0:
                        return
                    del buf[: eol + 2 + trailers_end + 4]
                self._finish(b"".join(self._chunks))
                return
            if len(buf) < eol + 2 + size + 2:
                return
            self._chunks.append(bytes(buf[eol + 2 : eol + 2 + size]))
            del buf[: eol + 2 + size + 2]

    def _finish(self, body: bytes) -> None:
        if self._buf:  # more than one answer: nothing we asked for
            self.keep_alive = False
        self._complete(body)


class Http1Pool:
    """Connections to one ``http://host:port[/prefix]`` origin, reused LIFO; at most ``max_connections`` at once."""

    def __init__(
        self, base_url: str, *, timeout: float, max_connections: int = 200, max_idle: int = 64
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only plain http://host[:port] origins are supported, not {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self._host = parts.netloc
        self.timeout = timeout
        self.max_idle = max_idle
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._closed = False

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _take(self) -> _Connection | None:
        loop = asyncio.get_running_loop()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and conn.loop is loop:
                return conn
            conn.close()
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: _Connection(loop), self.host, self.port)
        except OSError as exc:
            raise ConnectError(str(exc) or type(exc).__name__) from exc
        return conn

    def _encode(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes | None) -> bytes:
        lines = [f"{method} {self.prefix}{target} HTTP/1.1", f"host: {self._host}"]
        for name, value in headers:
            lines.append(f"{name}: {value}")
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"content-length: {len(body or b'')}")
        head = "\r\n".join(lines)
        if head.count("\n") != len(lines) - 1 or head.count("\r") != len(lines) - 1:
            raise ValueError("CR or LF inside the request line or a header")  # no header smuggling
        data = (head + "\r\n\r\n").encode("latin-1")
        return data + body if body else data

    async def request(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes | None = None,
    ) -> Http1Response:
        """One exchange; ``target`` is the path and query (already percent-encoded)."""
        if self._closed:
            raise ConnectError("the pool is closed")
        data = self._encode(method, target, headers, body)
        try:
            async with self._slots, asyncio.timeout(self.timeout):
                return await self._exchange(method, data)
        except TimeoutError as exc:
            raise ReadTimeout(f"no answer within {self.timeout} s") from exc

    async def _exchange(self, method: str, data: bytes) -> Http1Response:
        attempts = 2 if method in _IDEMPOTENT else 1
        for attempt in range(attempts):
            conn = self._take()
            reused = conn is not None
            if conn is None:
                conn = await self._connect()
            kept = False
            try:
                resp = await conn.send(data, head_only=method == "HEAD")
                if (
                    conn.keep_alive
                    and not conn.closed
                    and len(self._idle) < self.max_idle
                    and not self._closed
                ):
                    self._idle.append(conn)
                    kept = True
                return resp
            except _StaleConnection:
                if not reused or attempt == attempts - 1:
                    raise
            finally:
                if not kept:
                    conn.close()
        raise RemoteProtocolError("unreachable")  # pragma: no cover
