"""What the sync and the async client share: errors, answer parsing, paging rules, event and SSE decoding.

No I/O here: the two clients send the requests, this module says what to send and what an answer means.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx

from llmts_client.models import Event, Imported, Page, Template

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_PAGE_SIZE = 100
USER_AGENT = "llmts-client/0.1"


def default_url() -> str:
    """``LLMTS_URL``, else the local gateway."""
    return (os.environ.get("LLMTS_URL") or DEFAULT_URL).rstrip("/")


class ApiError(Exception):
    """A non-2xx answer: the API's ``{"error": {code, message, details}}`` (or what the server sent instead)."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    @classmethod
    def from_response(cls, resp: httpx.Response) -> ApiError:
        try:
            err = resp.json()["error"]
            return cls(resp.status_code, str(err["code"]), str(err["message"]), err.get("details"))
        except (ValueError, KeyError, TypeError):
            text = resp.text[:300] if not resp.is_stream_consumed or resp.content else ""
            return cls(resp.status_code, "http_error", text or resp.reason_phrase)


class ExportFailed(ApiError):
    """The export ended ``failed`` (its ``reason`` is the message)."""


def check(resp: httpx.Response) -> httpx.Response:
    if resp.status_code >= 400:
        raise ApiError.from_response(resp)
    return resp


def should_refresh(resp: httpx.Response, path: str, has_refresh_token: bool) -> bool:
    """A 401 from a non-``/auth`` route, when a refresh token is at hand: the access token expired (or was
    rotated away); refresh once and retry."""
    return resp.status_code == 401 and has_refresh_token and not path.startswith("/auth/")


def parse_import(body: Any) -> Imported:
    """An import's answer as ``Imported``, whichever shape the server uses: ``{template, notes}`` or the
    template itself."""
    if isinstance(body, dict) and isinstance(body.get("template"), dict) and "id" not in body:
        return Imported.model_validate(body)
    return Imported(template=Template.model_validate(body))


@dataclass
class Pager:
    """Offset paging of ``{items, total, limit, offset}`` lists: what to ask next and when to stop."""

    params: dict[str, Any]
    page_size: int = DEFAULT_PAGE_SIZE
    offset: int = 0
    done: bool = False

    def next_params(self) -> dict[str, Any]:
        limit = int(self.params.get("limit") or self.page_size)
        return {**self.params, "limit": limit, "offset": self.offset}

    def advance(self, page: Page[Any]) -> None:
        n = len(page.items)
        self.offset += n
        limit = int(self.params.get("limit") or self.page_size)
        if n == 0 or n < limit or (page.total is not None and self.offset >= page.total):
            self.done = True


def clean_params(params: dict[str, Any]) -> dict[str, Any]:
    """Drop unset filters; booleans as ``true``/``false``; ``from_`` as ``from``."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        name = "from" if key == "from_" else key
        out[name] = ("true" if value else "false") if isinstance(value, bool) else value
    return out


def job_path(job_id: str) -> str:
    return f"/generate/{quote(job_id, safe='')}"


def export_path(export_id: str) -> str:
    return f"/exports/{quote(export_id, safe='')}"


def ws_url(base_url: str, job_id: str) -> str:
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    path = parts.path.rstrip("/") + f"/ws/generate/{quote(job_id, safe='')}"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def to_event(raw: dict[str, Any]) -> Event:
    """A WebSocket message or SSE data as an ``Event`` (type without its ``llmts.generation.`` namespace)."""
    kind = str(raw.get("type") or "snapshot").rsplit(".", 1)[-1]
    data = raw.get("data")
    return Event(
        type=kind, id=raw.get("id"), time=raw.get("time"), data=data if isinstance(data, dict) else {}
    )


def ws_message(text: str | bytes) -> Event:
    """One WebSocket message; an ``error`` message raises ``ApiError``."""
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ApiError(502, "bad_event", "the server sent a message that is not an object")
    if raw.get("type") == "error":
        err = raw.get("error") or {}
        raise ApiError(
            404 if err.get("code", "").endswith("not_found") else 401,
            str(err.get("code", "error")),
            str(err.get("message", "")),
        )
    return to_event(raw)


class SseDecoder:
    """Server-Sent Events: feed lines, get the ``data`` of each complete event as an ``Event``."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> Event | None:
        line = line.rstrip("\r\n")
        if line == "":
            if not self._data:
                return None
            text, self._data = "\n".join(self._data), []
            raw = json.loads(text)
            return to_event(raw) if isinstance(raw, dict) else None
        if line.startswith(":"):
            return None  # comment / ping
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return None


_FILENAME_STAR = re.compile(r"filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)")
_FILENAME = re.compile(r'filename\s*=\s*"?([^";]+)"?')


def filename_of(resp: httpx.Response, fallback: str) -> str:
    """The file name of ``Content-Disposition`` (RFC 5987 form first), without any directory part."""
    header = resp.headers.get("content-disposition", "")
    match = _FILENAME_STAR.search(header)
    name = unquote(match.group(1)) if match else ""
    if not name:
        plain = _FILENAME.search(header)
        name = plain.group(1) if plain else ""
    name = os.path.basename(name.replace("\\", "/")).strip()
    return name if name and name not in (".", "..") else fallback


def retry_after(resp: httpx.Response, default: float) -> float:
    try:
        return max(0.1, min(float(resp.headers.get("retry-after", default)), 30.0))
    except ValueError:
        return default
