"""The web console's static files at /ui: served from the package, gzip, ETag revalidation, a self-only CSP, and
small enough for the first-load budget."""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from llmts_gateway.bootstrap import bootstrap
from llmts_gateway.entrypoints.routes.console import UI_DIR, assets
from llmts_gateway.entrypoints.security import UI_CSP
from llmts_gateway.settings import GatewaySettings


@pytest.fixture
async def gateway() -> AsyncIterator[httpx.AsyncClient]:
    app, _ctx, _runtime = bootstrap(GatewaySettings())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client  # no lifespan: static files need neither Kafka nor Mongo


async def test_root_redirects_to_the_index(gateway: httpx.AsyncClient) -> None:
    resp = await gateway.get("/ui")
    assert resp.status_code == 308
    assert resp.headers["location"] == "/ui/"
    index = await gateway.get("/ui/")
    assert index.status_code == 200
    assert index.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="/ui/js/app.js">' in index.text
    assert index.headers["content-security-policy"] == UI_CSP


async def test_the_policy_allows_only_this_origin(gateway: httpx.AsyncClient) -> None:
    policy = dict(part.strip().split(" ", 1) for part in UI_CSP.split(";"))
    for directive in ("default-src", "script-src", "style-src", "connect-src"):
        assert policy[directive] == "'self'", directive
    assert policy["frame-ancestors"] == "'none'"
    api = await gateway.get("/health")
    assert api.headers["content-security-policy"] != UI_CSP  # the API keeps its own deny-all policy


async def test_gzip_and_revalidation(gateway: httpx.AsyncClient) -> None:
    resp = await gateway.get("/ui/js/app.js", headers={"accept-encoding": "gzip"})
    assert resp.status_code == 200
    assert resp.headers["content-encoding"] == "gzip"
    assert resp.headers["content-type"] == "text/javascript; charset=utf-8"
    assert resp.headers["cache-control"] == "no-cache"
    assert resp.headers["vary"] == "Accept-Encoding"
    assert resp.content == (UI_DIR / "js" / "app.js").read_bytes()  # httpx decodes the gzip body
    again = await gateway.get("/ui/js/app.js", headers={"if-none-match": resp.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    plain = await gateway.get("/ui/js/app.js", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == resp.content


async def test_only_console_files_are_served(gateway: httpx.AsyncClient) -> None:
    for path in ("/ui/README.md", "/ui/../settings.py", "/ui/js/nothing.js", "/ui/%2e%2e/bootstrap.py"):
        resp = await gateway.get(path)
        assert resp.status_code == 404, path
        assert resp.json()["error"]["code"] == "not_found"


def test_every_module_the_console_imports_is_served() -> None:
    served = assets()
    for name, asset in served.items():
        if not name.endswith(".js"):
            continue
        base = name.rsplit("/", 1)[0]
        for spec in re.findall(r"""(?:from|import)\s*\(?\s*["'](\.{1,2}/[^"']+)["']""", asset.body.decode()):
            parts = [*base.split("/"), *spec.split("/")]
            resolved: list[str] = []
            for part in parts:
                if part == "..":
                    resolved.pop()
                elif part != ".":
                    resolved.append(part)
            assert "/".join(resolved) in served, f"{name} imports {spec}"


def test_first_load_stays_within_the_budget() -> None:
    code = sum(len(gzip.compress(a.body)) for n, a in assets().items() if n.endswith((".js", ".css")))
    assert code < 200 * 1024
