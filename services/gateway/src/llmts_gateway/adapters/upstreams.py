"""HTTP clients to the services behind the gateway (synchronous reads go over HTTP, work goes through Kafka).

``forward`` (the pass-through of ``/auth*`` and ``/templates*``) relays over a lean keep-alive HTTP/1.1 pool
(``llmts_common.http1``): the body goes through as bytes in both directions, nothing is decoded or re-encoded.
``request`` (calls whose answer a route reads) and ``clients`` (streamed downloads) are httpx.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

import httpx
from fastapi import Request, Response

from llmts_common.errors import BadRequest, ServiceUnavailable
from llmts_common.http1 import Http1Pool, UpstreamError
from llmts_common.logging import correlation_id_var
from llmts_common.tracing import current_traceparent

SERVICES = ("auth", "catalog", "templates", "generator", "exporter")
_HOP_HEADERS = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "content-encoding",
    "host",
}
_HOP_HEADERS_RAW = frozenset(h.encode() for h in _HOP_HEADERS)
# Set by the gateway itself on every answer (its server adds ``date``, the edge middleware the correlation id):
# relayed as well, they would appear twice.
_OWN_HEADERS_RAW = frozenset({b"date", b"server", b"x-correlation-id"})
_DROPPED_ANSWER_HEADERS = _HOP_HEADERS_RAW | _OWN_HEADERS_RAW
_FORWARDED_REQUEST_HEADERS = frozenset({b"authorization", b"content-type", b"accept"})
_QUERY_SAFE = "/%:@!$&'()*+,;=-._~?[]"


_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


def safe_path(path: str) -> str:
    """Percent-encode whatever a client put into an id (control characters, spaces, ``?``, ``#``, non-ASCII) so
    it stays inside its path segment upstream; ``/`` and existing escapes are kept. A ``.`` or ``..`` segment
    (also percent-encoded) or a backslash is refused with 400: a client id must never climb to another route
    (httpx would resolve the dot segments)."""
    for segment in path.split("/"):
        if unquote(unquote(segment)) in (".", "..") or "\\" in unquote(segment):
            raise BadRequest(
                "invalid path: '.' or '..' segments and backslashes are not allowed", code="invalid_path"
            )
    return quote(path, safe=_PATH_SAFE)


# Idempotent methods that carry no body here (DELETE included: the gateway never sends one with a body).
_RETRYABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
_DROPPED_CONNECTION = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


class Upstreams:
    def __init__(self, urls: dict[str, str], *, timeout: float) -> None:
        self.urls = urls
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        self.clients = {
            name: httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits)
            for name, url in urls.items()
        }
        self.relays = {name: Http1Pool(url, timeout=timeout) for name, url in urls.items()}

    async def aclose(self) -> None:
        for c in self.clients.values():
            await c.aclose()
        for r in self.relays.values():
            await r.aclose()

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"x-correlation-id": correlation_id_var.get() or ""}
        tp = current_traceparent()
        if tp:
            headers["traceparent"] = tp
        if extra:
            headers.update(extra)
        return headers

    async def request(
        self,
        service: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """One call; an idempotent one without a body is sent once more when a pooled connection turned out to be
        closed (the upstream dropped it, e.g. after answering 500): ``ReadError``, ``WriteError`` or
        ``RemoteProtocolError`` before any answer."""
        target = safe_path(path)
        retry = method.upper() in _RETRYABLE_METHODS and json is None and not content
        for attempt in (1, 2):
            try:
                return await self.clients[service].request(
                    method, target, json=json, params=params, headers=self._headers(headers), content=content
                )
            except httpx.HTTPError as exc:
                if retry and attempt == 1 and isinstance(exc, _DROPPED_CONNECTION):
                    continue
                raise ServiceUnavailable(
                    f"the {service} service is unavailable",
                    details={"service": service, "error": type(exc).__name__, "attempts": attempt},
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def forward(
        self, service: str, request: Request, path: str, *, extra_headers: dict[str, str] | None = None
    ) -> Response:
        """Pass a request through unchanged (body, query, auth header) and relay the answer as received."""
        body = await request.body()
        headers: list[tuple[str, str]] = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in request.scope["headers"]
            if k in _FORWARDED_REQUEST_HEADERS
        ]
        # Append the peer to X-Forwarded-For: a client-sent chain is kept but never replaces what we saw.
        peer = request.client.host if request.client else ""
        chain = request.headers.get("x-forwarded-for")
        forwarded = {"x-forwarded-for": f"{chain}, {peer}" if chain else peer}
        if extra_headers:
            forwarded.update(extra_headers)
        forwarded.update(self._headers())
        headers.extend(forwarded.items())
        target = safe_path(path)
        query = request.scope.get("query_string", b"")
        if query:
            target += "?" + quote(query.decode("latin-1"), safe=_QUERY_SAFE)
        try:
            answer = await self.relays[service].request(request.method, target, headers, body or None)
        except (UpstreamError, OSError) as exc:
            raise ServiceUnavailable(
                f"the {service} service is unavailable",
                details={"service": service, "error": type(exc).__name__},
            ) from exc
        raw = [(k, v) for k, v in answer.headers if k.lower() not in _DROPPED_ANSWER_HEADERS]
        if not (answer.status < 200 or answer.status in (204, 304)):  # as Starlette sets it
            raw.append((b"content-length", str(len(answer.body)).encode()))
        response = Response(status_code=answer.status)
        response.body = answer.body
        response.raw_headers = raw
        return response

    async def forward_stream(self, service: str, request: Request, path: str) -> Response:
        """Like :meth:`forward`, for an upload: the request body is streamed to the service as it arrives (chunked),
        never held here; the (small, JSON) answer is relayed as received."""
        headers = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in request.scope["headers"]
            if k in _FORWARDED_REQUEST_HEADERS
        }
        peer = request.client.host if request.client else ""
        chain = request.headers.get("x-forwarded-for")
        headers["x-forwarded-for"] = f"{chain}, {peer}" if chain else peer
        headers.update(self._headers())
        try:
            answer = await self.clients[service].request(
                request.method,
                safe_path(path),
                params=list(request.query_params.multi_items()),
                headers=headers,
                content=request.stream(),
            )
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(
                f"the {service} service is unavailable",
                details={"service": service, "error": type(exc).__name__},
            ) from exc
        kept = {k: v for k, v in answer.headers.items() if k.lower().encode() not in _DROPPED_ANSWER_HEADERS}
        return Response(content=answer.content, status_code=answer.status_code, headers=kept)

    async def ready(self, service: str) -> dict[str, Any]:
        try:
            resp = await self.clients[service].get("/ready", timeout=1.5)  # within /ready's 2 s per check
        except httpx.HTTPError as exc:
            return {"ready": False, "error": type(exc).__name__}
        return {"ready": resp.status_code == 200}
