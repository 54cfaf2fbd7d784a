"""``/ui``: the web console's static files (``llmts_gateway/ui``), served by the gateway on the API's origin.

The files are read once, when first asked for, and kept in memory with their gzip form (compressed once, level 9)
and a content hash as ``ETag``. Every answer is ``Cache-Control: no-cache`` — the browser keeps the file and
revalidates it (``If-None-Match`` → 304), so a new release is picked up at once without fingerprinted names (there
is no build step). Only files with a known type are served; anything else under ``/ui`` is 404. The content
security policy of these pages (``security.UI_CSP``) allows this origin only.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse, Response

from llmts_common.errors import NotFound

router = APIRouter(include_in_schema=False)

UI_DIR = Path(__file__).resolve().parents[2] / "ui"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    media_type: str
    etag: str


def _asset(path: Path) -> Asset:
    body = path.read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Asset(body, gzip.compress(body, compresslevel=9, mtime=0), _TYPES[path.suffix], etag)


@cache
def assets() -> dict[str, Asset]:
    """Every servable file of the console by its path under ``/ui/``."""
    return {
        p.relative_to(UI_DIR).as_posix(): _asset(p)
        for p in sorted(UI_DIR.rglob("*"))
        if p.is_file() and p.suffix in _TYPES
    }


def answer(asset: Asset, *, accept_encoding: str, if_none_match: str | None) -> Response:
    headers = {"Cache-Control": "no-cache", "ETag": asset.etag, "Vary": "Accept-Encoding"}
    if if_none_match and asset.etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=304, headers=headers)
    if "gzip" in accept_encoding.lower():
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@router.get("/ui")
async def console_root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=308)


@router.get("/ui/{name:path}")
async def console_file(
    name: Annotated[str, PathParam(max_length=200)],
    accept_encoding: Annotated[str, Header(max_length=500)] = "",
    if_none_match: Annotated[str | None, Header(max_length=500)] = None,
) -> Response:
    asset = assets().get(name or "index.html")
    if asset is None:
        raise NotFound("no such console file", details={"path": name[:200]})
    return answer(asset, accept_encoding=accept_encoding, if_none_match=if_none_match)
