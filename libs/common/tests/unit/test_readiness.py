"""``/ready`` gates on the required checks only, runs them concurrently and bounds each one (issue 16)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from pymongo.errors import ServerSelectionTimeoutError

from llmts_common import web
from llmts_common.web import Reported, create_app


def _client(checks: dict[str, Any]) -> httpx.AsyncClient:
    app = create_app(service="t", title="t", checks=checks)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def _up() -> dict[str, Any]:
    return {"ready": True}


async def _optional_down() -> dict[str, Any]:
    return {"ready": False, "required": False}


async def _down() -> bool:
    return False


async def test_a_dependency_marked_not_required_is_reported_but_keeps_the_pod_ready() -> None:
    async with _client({"mongo": _up, "kafka": _optional_down}) as c:
        r = await c.get("/ready")
    assert r.status_code == 200
    assert r.json() == {
        "ready": True,
        "checks": {"mongo": {"ready": True}, "kafka": {"ready": False, "required": False}},
    }


async def test_a_required_dependency_down_makes_the_pod_unready() -> None:
    async with _client({"mongo": _down, "kafka": _optional_down}) as c:
        r = await c.get("/ready")
    assert r.status_code == 503
    assert r.json()["checks"]["mongo"] == {"ready": False}


async def test_checks_run_concurrently_and_a_hanging_one_times_out(monkeypatch: Any) -> None:
    monkeypatch.setattr(web, "READY_CHECK_TIMEOUT_S", 0.5)
    together = asyncio.Barrier(5)  # passes only once all five checks are running at the same time

    async def meets_the_others() -> dict[str, Any]:
        await together.wait()
        return {"ready": True, "required": False}

    async def hangs() -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {"ready": True}

    checks: dict[str, Any] = {f"svc{i}": meets_the_others for i in range(5)}
    async with _client(checks) as c:
        r = await c.get("/ready")
        # run one after the other, the first would wait at the barrier until its timeout: 503, "timeout"
        assert r.status_code == 200, r.json()
        assert all(check == {"ready": True, "required": False} for check in r.json()["checks"].values())
        async with _client({"mongo": hangs}) as c2:
            r = await c2.get("/ready")  # answered (the check's timeout), not left hanging with the check
    assert r.status_code == 503
    assert r.json()["checks"]["mongo"] == {"ready": False, "error": "timeout"}


async def test_health_answers_whatever_the_checks_say() -> None:
    async with _client({"mongo": _down}) as c:
        r = await c.get("/health")
    assert r.status_code == 200


async def test_a_route_whose_database_is_away_answers_503_not_500() -> None:
    app = create_app(service="t", title="t")

    @app.get("/thing")
    async def thing() -> dict[str, str]:
        raise ServerSelectionTimeoutError("127.0.0.1:27017: connection refused")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/thing")
    assert r.status_code == 503
    assert r.headers["retry-after"] == "5"
    body = r.json()["error"]
    assert body["code"] == "service_unavailable"
    assert "27017" not in r.text  # no internals


async def test_a_reported_check_that_fails_or_hangs_keeps_the_pod_ready(monkeypatch: Any) -> None:
    monkeypatch.setattr(web, "READY_CHECK_TIMEOUT_S", 0.2)

    async def hangs() -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {"ready": True}

    async def raises() -> dict[str, Any]:
        raise ConnectionError("refused")

    async with _client({"mongo": _up, "kafka": Reported(hangs), "auth": Reported(raises)}) as c:
        r = await c.get("/ready")
    assert r.status_code == 200, r.text
    assert r.json()["checks"]["kafka"] == {"ready": False, "error": "timeout", "required": False}
    assert r.json()["checks"]["auth"] == {"ready": False, "error": "ConnectionError", "required": False}
