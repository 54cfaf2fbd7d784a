"""FastAPI plumbing every service shares: the error body, limits, correlation ids, tracing, metrics, health.

Every error leaves as ``{"error": {"code", "message", "details", "correlation_id"}}``; an unexpected exception is
logged with its correlation id and answered 500 without internals. Every method's body is bounded (GET, HEAD,
OPTIONS and DELETE to ``BODYLESS_MAX_BYTES``), and read whole before the app sees it, so no route buffers more.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from pymongo.errors import ConnectionFailure
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmts_common.errors import AppError, PayloadTooLarge, error_body
from llmts_common.logging import correlation_id_var
from llmts_common.tracing import context_from_headers, tracer

log = logging.getLogger("llmts.http")

HTTP_REQUESTS = Counter(
    "llmts_http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "llmts_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

ReadinessCheck = Callable[[], Awaitable[bool | dict[str, Any]]]
"""A dependency check of ``/ready``: ``True``/``False`` or ``{"ready": bool, ...}``. A result with
``"required": False`` is reported but does not make the pod unready (a dependency the pod serves without)."""


@dataclass(frozen=True)
class Reported:
    """A check that is reported in ``/ready`` but never makes the pod unready, even when it fails or times out
    (its result carries ``"required": false``)."""

    check: ReadinessCheck

    async def __call__(self) -> bool | dict[str, Any]:
        return await self.check()


READY_CHECK_TIMEOUT_S = 2.0
"""Each check of ``/ready`` gets this long (they run concurrently, so the answer comes well within a 5 s probe
timeout); a check that takes longer counts as not ready."""

BODYLESS_MAX_BYTES = 8192
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
_STRING_RE = re.compile(rb'"(?:[^"\\]|\\.)*"')


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """True when brackets nest deeper than ``limit`` (strings skipped); linear, never recursive."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    stripped = _STRING_RE.sub(b'""', body)
    depth = 0
    for ch in stripped:
        if ch in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif ch in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def is_json_media_type(content_type: str) -> bool:
    """``application/json``, ``application/JSON; charset=utf-8``, ``application/problem+json``: media types are
    case-insensitive and may carry parameters."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media.endswith("/json") or media.endswith("+json")


class _Reject(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _counted_receive(receive: Receive, limit: int) -> Receive:
    """The body as it arrives (a route streams it: an upload is never held in memory), refused past ``limit`` with
    :class:`~llmts_common.errors.PayloadTooLarge`, raised in the route that reads it (answered 413 by the app's error
    handlers)."""
    size = 0

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise PayloadTooLarge(f"request body exceeds {limit} bytes", details={"max_bytes": limit})
        return message

    return counted


class EdgeMiddleware:
    """Pure-ASGI middleware: correlation id, server span, metrics, body-size and JSON-depth limits."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        max_body_bytes: int,
        max_json_depth: int,
        max_bodyless_bytes: int = BODYLESS_MAX_BYTES,
        streamed_bodies: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.service = service
        self.max_body = max_body_bytes
        self.max_depth = max_json_depth
        self.max_bodyless = min(max_bodyless_bytes, max_body_bytes)
        self.streamed = dict(streamed_bodies or {})

    def _limit(self, method: str) -> int:
        """GET/HEAD/OPTIONS/DELETE carry no meaningful body: a small cap; every other method the body cap."""
        return self.max_bodyless if method in _BODYLESS_METHODS else self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        cid = headers.get("x-correlation-id") or headers.get("x-request-id") or uuid.uuid4().hex
        cid = cid[:128]
        token = correlation_id_var.set(cid)
        method = scope.get("method", "WS")
        path = scope.get("path", "")
        status_holder = {"status": 500}
        start = time.perf_counter()
        try:
            if scope["type"] == "websocket":
                await self.app(scope, receive, send)
                return
            streamed = self.streamed.get(f"{method} {path}")
            limit = streamed if streamed is not None else self._limit(method)
            declared = headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise _Reject(413, "payload_too_large", f"request body exceeds {limit} bytes")
            if streamed is not None:
                receive = _counted_receive(receive, limit)
            else:
                receive = await self._buffered_receive(receive, headers, limit)
            started = False

            async def send_wrapper(message: Message) -> None:
                nonlocal started
                if message["type"] == "http.response.start":
                    started = True
                    status_holder["status"] = message["status"]
                    kept = [h for h in message.get("headers", []) if h[0].lower() != b"x-correlation-id"]
                    message["headers"] = [*kept, (b"x-correlation-id", cid.encode())]  # one, even on a relay
                await send(message)

            ctx = context_from_headers(headers)
            with tracer("llmts.http").start_as_current_span(
                f"{method} {path}", context=ctx, kind=SpanKind.SERVER, attributes={"http.method": method}
            ) as span:
                try:
                    await self.app(scope, receive, send_wrapper)
                except Exception as exc:
                    # Answered here, while the correlation id is still set (Starlette's outermost error
                    # middleware runs after this one has reset it).
                    if started:
                        raise
                    log.exception("unhandled error: %s", type(exc).__name__)
                    status_holder["status"] = 500
                    await _send_error(send, 500, "internal_error", "internal error", cid)
                span.set_attribute("http.status_code", status_holder["status"])
                if status_holder["status"] >= 500:
                    span.set_status(Status(StatusCode.ERROR))
        except _Reject as rej:
            status_holder["status"] = rej.status
            await _send_error(send, rej.status, rej.code, rej.message, cid)
        finally:
            route = scope.get("route")
            route_path = getattr(route, "path", None) or "unmatched"
            HTTP_REQUESTS.labels(self.service, method, route_path, str(status_holder["status"])).inc()
            HTTP_LATENCY.labels(self.service, method, route_path).observe(time.perf_counter() - start)
            correlation_id_var.reset(token)

    async def _buffered_receive(self, receive: Receive, headers: Mapping[str, str], limit: int) -> Receive:
        """Read the whole body (every method: a chunked GET body is a body too), refusing it past ``limit``."""
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Reject(400, "client_disconnected", "client disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _Reject(413, "payload_too_large", f"request body exceeds {limit} bytes")
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        # FastAPI parses a body without a content type as JSON too.
        content_type = headers.get("content-type", "")
        json_like = not content_type.strip() or is_json_media_type(content_type)
        if body and json_like and json_depth_exceeds(body, self.max_depth):
            raise _Reject(422, "json_too_deep", f"JSON nesting deeper than {self.max_depth} levels")
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay


async def _send_error(send: Send, status: int, code: str, message: str, cid: str) -> None:
    payload = json.dumps(error_body(code, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"x-correlation-id", cid.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _jsonable_errors(errors: Any) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        item = {
            "loc": list(err.get("loc", ())),
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        out.append(item)
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _jsonable_errors(exc.errors())
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"][1:]) or "body"
        return JSONResponse(
            error_body("validation_error", f"invalid request: {where}: {first['msg']}", errors),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
        }
        code = codes.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def _storage_unavailable(_: Request, exc: Exception) -> JSONResponse:
        # the service's database is away: a 503 the client may retry, not a 500 (no internals in the body)
        log.warning("database unavailable: %s", type(exc).__name__)
        return JSONResponse(
            error_body("service_unavailable", "the service's database is unavailable; try again shortly"),
            status_code=503,
            headers={"Retry-After": "5"},
        )

    # ConnectionFailure: the base of every "server away" error (AutoReconnect, NetworkTimeout, server selection)
    app.add_exception_handler(ConnectionFailure, _storage_unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error: %s", type(exc).__name__)
        return JSONResponse(error_body("internal_error", "internal error"), status_code=500)


_READY_EXAMPLE: dict[str, Any] = {
    "ready": True,
    "checks": {"mongo": {"ready": True}, "kafka": {"ready": True}},
}


async def _run_check(check: ReadinessCheck) -> dict[str, Any]:
    optional = {"required": False} if isinstance(check, Reported) else {}
    try:
        res = await asyncio.wait_for(check(), timeout=READY_CHECK_TIMEOUT_S)
    except TimeoutError:
        return {"ready": False, "error": "timeout", **optional}
    except Exception as exc:
        return {"ready": False, "error": type(exc).__name__, **optional}
    return {**({"ready": res} if isinstance(res, bool) else res), **optional}


def add_health_routes(app: FastAPI, checks: Mapping[str, ReadinessCheck]) -> None:
    @app.get(
        "/health",
        tags=["health"],
        summary="Liveness",
        responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}},
    )
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/ready",
        tags=["health"],
        summary="Readiness: every dependency this pod needs to serve is reachable",
        responses={
            200: {
                "description": "Every required dependency answers (`ready: true`); a check marked "
                "`required: false` (e.g. Kafka: commands wait in the outbox) is reported but does not make the "
                "pod unready. Otherwise 503 with the same shape.",
                "content": {"application/json": {"example": _READY_EXAMPLE}},
            },
            503: {
                "description": "A required dependency does not answer.",
                "content": {"application/json": {"example": {**_READY_EXAMPLE, "ready": False}}},
            },
        },
    )
    async def ready() -> JSONResponse:
        names = list(checks)
        answers = await asyncio.gather(*(_run_check(checks[name]) for name in names))
        results = dict(zip(names, answers, strict=True))
        ok = all(res.get("ready") or res.get("required") is False for res in answers)
        return JSONResponse({"ready": ok, "checks": results}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def create_app(
    *,
    service: str,
    title: str,
    version: str = "0.1.0",
    description: str = "",
    lifespan: Any = None,
    max_body_bytes: int = 1_048_576,
    max_json_depth: int = 64,
    checks: Mapping[str, ReadinessCheck] | None = None,
    streamed_bodies: Mapping[str, int] | None = None,
    **kwargs: Any,
) -> FastAPI:
    """``streamed_bodies``: ``{"POST /datasets": limit}`` — routes that read their body as a stream (uploads): not
    buffered by the edge, only counted against their own limit; every other body is buffered and capped at
    ``max_body_bytes``."""
    # One SERVER span per request comes from EdgeMiddleware (with the correlation id); FastAPI's own native
    # telemetry would add duplicate spans, metrics and log records per request, so it is switched off here.
    kwargs.setdefault(
        "telemetry", {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    )
    app = FastAPI(title=title, version=version, description=description, lifespan=lifespan, **kwargs)
    install_error_handlers(app)
    add_health_routes(app, checks or {})
    app.add_middleware(
        EdgeMiddleware,
        service=service,
        max_body_bytes=max_body_bytes,
        max_json_depth=max_json_depth,
        streamed_bodies=streamed_bodies,
    )
    return app
