"""The gateway's upstream paths and calls: client ids stay in their segment, no dot segments, and one retry of an
idempotent call on a dropped pooled connection."""

from __future__ import annotations

import httpx
import pytest
from starlette.requests import Request

from llmts_common.errors import BadRequest, ServiceUnavailable
from llmts_common.http1 import Http1Response
from llmts_gateway.adapters.upstreams import Upstreams, safe_path


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/generate/abc123", "/generate/abc123"),
        (
            "/providers/models/meta-llama/llama-3.3-70b-instruct:free",
            "/providers/models/meta-llama/llama-3.3-70b-instruct:free",
        ),
        ("/generate/\x08\x05x", "/generate/%08%05x"),
        ("/generate/a?admin=1", "/generate/a%3Fadmin=1"),
        ("/generate/a#frag", "/generate/a%23frag"),
        (
            "/templates/идентификатор",
            "/templates/%D0%B8%D0%B4%D0%B5%D0%BD%D1%82%D0%B8%D1%84%D0%B8%D0%BA%D0%B0%D1%82%D0%BE%D1%80",
        ),
        ("/exports/already%20quoted", "/exports/already%20quoted"),
    ],
)
def test_client_ids_stay_inside_their_segment(raw: str, expected: str) -> None:
    assert safe_path(raw) == expected


def _upstreams(failures: list[type[httpx.HTTPError]]) -> tuple[Upstreams, list[str]]:
    """Upstreams whose catalog client fails with ``failures`` in turn, then answers 200."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        if failures:
            raise failures.pop(0)("connection closed", request=request)
        return httpx.Response(200, json={"ok": True})

    ups = Upstreams({"catalog": "http://catalog.invalid"}, timeout=5)
    ups.clients["catalog"] = httpx.AsyncClient(
        transport=httpx.MockTransport(handler), base_url="http://catalog.invalid"
    )
    return ups, calls


@pytest.mark.parametrize("error", [httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError])
@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "DELETE"])
async def test_an_idempotent_call_is_retried_once_on_a_dropped_connection(
    method: str, error: type[httpx.HTTPError]
) -> None:
    ups, calls = _upstreams([error])
    resp = await ups.request("catalog", method, "/providers")
    assert resp.status_code == 200
    assert calls == [f"{method} /providers"] * 2
    await ups.aclose()


async def test_only_once() -> None:
    ups, calls = _upstreams([httpx.ReadError, httpx.ReadError])
    with pytest.raises(ServiceUnavailable) as info:
        await ups.request("catalog", "GET", "/providers")
    assert info.value.details["error"] == "ReadError"
    assert len(calls) == 2
    await ups.aclose()


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [("POST", {"json": {"provider": "ollama"}}), ("PUT", {"content": b"x"}), ("DELETE", {"json": {"a": 1}})],
)
async def test_calls_that_are_not_idempotent_or_carry_a_body_are_not_retried(
    method: str, kwargs: dict[str, object]
) -> None:
    ups, calls = _upstreams([httpx.ReadError])
    with pytest.raises(ServiceUnavailable):
        await ups.request("catalog", method, "/providers/test", **kwargs)  # type: ignore[arg-type]
    assert len(calls) == 1
    await ups.aclose()


async def test_a_timeout_is_not_retried() -> None:
    ups, calls = _upstreams([httpx.ReadTimeout])
    with pytest.raises(ServiceUnavailable):
        await ups.request("catalog", "GET", "/providers")
    assert len(calls) == 1
    await ups.aclose()


@pytest.mark.parametrize(
    "path", ["/providers/models/../../metrics", "/generate/./x", "/a/%2E%2E/b", "/a/%252e%252e", "/a/..\\b"]
)
def test_dot_segments_never_go_upstream(path: str) -> None:
    with pytest.raises(BadRequest):
        safe_path(path)


def test_ordinary_ids_pass() -> None:
    assert safe_path("/providers/models/llama3.2:latest") == "/providers/models/llama3.2:latest"
    assert safe_path("/templates/a b?c") == "/templates/a%20b%3Fc"


class _FakeRelay:
    """An Http1Pool stand-in answering what an upstream service answers: its own date, server and correlation id."""

    async def request(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> Http1Response:
        return Http1Response(
            200,
            [
                (b"date", b"Sun, 06 Dec 2026 23:00:00 GMT"),
                (b"server", b"uvicorn"),
                (b"x-correlation-id", b"upstream-cid"),
                (b"content-type", b"application/json"),
                (b"etag", b'"v1"'),
            ],
            b'{"ok": true}',
        )


async def test_forwarded_answers_do_not_repeat_the_gateways_own_headers() -> None:
    ups = Upstreams({"templates": "http://templates.invalid"}, timeout=5)
    ups.relays["templates"] = _FakeRelay()  # type: ignore[assignment]
    scope = {"type": "http", "method": "GET", "path": "/templates", "headers": [], "query_string": b""}

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    resp = await ups.forward("templates", Request(scope, receive), "/templates")
    names = [k for k, _ in resp.raw_headers]
    assert b"date" not in names
    assert b"server" not in names
    assert b"x-correlation-id" not in names
    assert (b"etag", b'"v1"') in resp.raw_headers
    assert resp.body == b'{"ok": true}'
