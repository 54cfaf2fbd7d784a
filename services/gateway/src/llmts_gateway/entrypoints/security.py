"""Security headers on every gateway answer, and the API docs served with their assets by the gateway itself.

- Every answer: ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer``,
  ``Cross-Origin-Opener-Policy: same-origin``, ``Permissions-Policy`` (no camera, microphone, geolocation) and a
  Content-Security-Policy: the API's answers are data, so ``default-src 'none'; frame-ancestors 'none'``; the docs
  pages get one allowing only this origin's scripts (the Swagger UI start-up script by its hash), styles and
  images; the web console (``/ui``) one allowing only this origin (``UI_CSP``). ``Strict-Transport-Security``
  only when ``HSTS_MAX_AGE_SECONDS`` > 0 (the gateway is served over https). A ``Server`` header (ours or an
  upstream's) is removed; uvicorn's own is switched off in ``__main__``.
- ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) load their JavaScript and CSS from ``/docs/assets/…``, files of
  the ``fastapi-offline`` package (Swagger UI: Apache-2.0, ReDoc: MIT) — no CDN, so they work offline.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmts_common.errors import NotFound

ASSETS_PATH = "/docs/assets"
_ASSETS: dict[str, str] = {  # file -> media type: only these are served
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
UI_PREFIX = "/ui"
UI_CSP = (  # the web console (routes/console.py): this origin only; 'self' covers ws(s) to the same host (CSP 3)
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_COMMON_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def assets_dir() -> Path:
    """Where the packaged Swagger UI / ReDoc files are."""
    return Path(str(files("fastapi_offline") / "static"))


def docs_csp(*pages: str) -> str:
    """The docs pages' policy: this origin only, plus the pages' inline start-up scripts by their sha256."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for page in pages
        for script in _INLINE_SCRIPT.findall(page)
    )
    return (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


class SecurityHeaders:
    """Pure-ASGI middleware adding the security headers to every HTTP answer (errors and relays included)."""

    def __init__(
        self, app: ASGIApp, *, hsts_max_age: int, docs_paths: frozenset[str], docs_policy: str
    ) -> None:
        self.app = app
        self.docs_paths = docs_paths
        self.docs_policy = docs_policy.encode()
        extra = [(b"strict-transport-security", f"max-age={hsts_max_age}; includeSubDomains".encode())]
        self.headers = [*_COMMON_HEADERS, *(extra if hsts_max_age > 0 else [])]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        docs = path in self.docs_paths or path.startswith(ASSETS_PATH + "/")
        console = path == UI_PREFIX or path.startswith(UI_PREFIX + "/")
        policy = self.docs_policy if docs else (UI_CSP if console else API_CSP).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in (b"server", b"content-security-policy", b"x-frame-options")
                ]
                message["headers"] = [*kept, *self.headers, (b"content-security-policy", policy)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI, *, hsts_max_age: int) -> None:
    """Self-hosted ``/docs`` and ``/redoc`` (create the app with ``docs_url=None, redoc_url=None``) and the
    security headers middleware."""
    openapi_url = app.openapi_url or "/openapi.json"
    favicon = f"{ASSETS_PATH}/favicon.png"
    swagger_page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{app.title} - Swagger UI",
        swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=favicon,
    ).body
    redoc_page = get_redoc_html(
        openapi_url=openapi_url,
        title=f"{app.title} - ReDoc",
        redoc_js_url=f"{ASSETS_PATH}/redoc.standalone.js",
        redoc_favicon_url=favicon,
        with_google_fonts=False,
    ).body
    swagger, redoc = bytes(swagger_page).decode(), bytes(redoc_page).decode()
    directory = assets_dir()

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(swagger)

    @app.get("/redoc", include_in_schema=False)
    async def redoc_ui() -> HTMLResponse:
        return HTMLResponse(redoc)

    @app.get(ASSETS_PATH + "/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> FileResponse:
        media_type = _ASSETS.get(name)
        if media_type is None:
            raise NotFound("no such docs asset", details={"name": name[:100]})
        return FileResponse(
            directory / name, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"}
        )

    app.add_middleware(
        SecurityHeaders,
        hsts_max_age=hsts_max_age,
        docs_paths=frozenset({"/docs", "/redoc"}),
        docs_policy=docs_csp(swagger, redoc),
    )
