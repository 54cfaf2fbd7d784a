"""An in-process fake of the gateway's public API for httpx.MockTransport: just enough state and rules to test
the client (tokens that expire, pages, imports, jobs and their events, exports that are queued then ready)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

NOW = "2026-12-06T10:00:00Z"


def _error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message, "details": None}})


@dataclass
class FakeGateway:
    templates: int = 0
    export_polls_before_ready: int = 2
    export_fails: bool = False
    import_wrapped: bool = True
    job_status: str = "completed"
    events: list[dict[str, Any]] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    access: str = "access-1"
    refresh: str = "refresh-1"
    refreshes: int = 0
    export_polls: int = 0
    refuse_refresh: bool = False
    items: int = 5

    def expire(self) -> None:
        """The current access token stops being accepted (as after its 15 minutes)."""
        self.access = self.access + "-expired-next"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/auth/login":
            body = json.loads(request.content)
            if body.get("password") != "pw":
                return _error(401, "invalid_credentials", "wrong e-mail or password")
            return self._tokens()
        if path == "/auth/refresh":
            body = json.loads(request.content)
            if self.refuse_refresh or body.get("refresh_token") != self.refresh:
                return _error(401, "invalid_refresh_token", "unknown or spent refresh token")
            self.refreshes += 1
            self.access, self.refresh = f"access-{self.refreshes + 1}", f"refresh-{self.refreshes + 1}"
            return self._tokens()
        if request.headers.get("authorization") != f"Bearer {self.access}":
            return _error(401, "token_expired", "the access token expired")
        return self._route(request, path)

    def _tokens(self) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "access_token": self.access,
                "refresh_token": self.refresh,
                "token_type": "bearer",
                "expires_in": 900,
            },
        )

    def _route(self, request: httpx.Request, path: str) -> httpx.Response:
        params = request.url.params
        if path == "/templates" and request.method == "GET":
            return self._page(params, [self._summary(i) for i in range(self.templates)])
        if path == "/templates/import/llm-data-gen":
            template = self._template("t-ldg", json.loads(request.content)["meta"]["name"])
            return httpx.Response(201, json={"template": template, "notes": ["api.baseUrl is not kept"]})
        if path.startswith("/templates/examples/") and path.endswith("/import"):
            template = self._template("t-quiz", "Quiz questions")
            body = {"template": template, "notes": []} if self.import_wrapped else template
            return httpx.Response(201, json=body)
        if path == "/generate" and request.method == "POST":
            return httpx.Response(
                202, json={"job_id": "j1", "status": "queued", "links": {"self": "/generate/j1"}}
            )
        if path == "/generate/j1":
            return httpx.Response(200, json=self._job())
        if path == "/generate/j1/result":
            return self._page(
                params, [{"index": i, "data": {"n": i}, "attempts": 1} for i in range(self.items)]
            )
        if path == "/generate/j1/events":
            return self._sse()
        if path == "/exports" and request.method == "POST":
            return httpx.Response(
                202, json={"export_id": "e1", "status": "queued", "links": {"self": "/exports/e1"}}
            )
        if path == "/exports/e1":
            return self._export_status()
        if path == "/exports/e1/download":
            return httpx.Response(
                200,
                content=b'{"n": 0}\n',
                headers={
                    "content-disposition": "attachment; filename*=UTF-8''quiz-questions-2026-12-06-j1.jsonl"
                },
            )
        return _error(404, "not_found", f"no route {request.method} {path}")

    def _page(self, params: httpx.QueryParams, rows: list[dict[str, Any]]) -> httpx.Response:
        limit, offset = int(params.get("limit", "20")), int(params.get("offset", "0"))
        body = {"items": rows[offset : offset + limit], "total": len(rows), "limit": limit, "offset": offset}
        return httpx.Response(200, json=body)

    def _summary(self, i: int) -> dict[str, Any]:
        return {
            "id": f"t{i}", "owner_id": "u1", "version": 1, "name": f"template {i}", "description": "",
            "category": "education", "tags": ["quiz"], "visibility": "private", "output_format": "json",
            "model_id": None, "created_at": NOW, "updated_at": NOW, "a_field_from_a_newer_server": True,
        }  # fmt: skip

    def _template(self, template_id: str, name: str) -> dict[str, Any]:
        return {
            "id": template_id, "owner_id": "u1", "version": 1, "name": name, "prompts": {"user": "Hi"},
            "tasks": [{"topic": "x", "count": 2}], "created_at": NOW, "updated_at": NOW,
        }  # fmt: skip

    def _job(self) -> dict[str, Any]:
        return {
            "job_id": "j1", "status": self.job_status, "requested": self.items,
            "counts": {"requested": self.items, "succeeded": self.items, "rejected": 0, "attempts": self.items},
            "usage": {"prompt_tokens": 10, "completion_tokens": 20, "cost_usd": 0.0125},
            "template": {"id": "t-quiz", "version": 1, "name": "Quiz questions"}, "timings": {},
        }  # fmt: skip

    def _sse(self) -> httpx.Response:
        lines = [": ping\n\n"]
        for event in self.events:
            name = str(event["type"]).rsplit(".", 1)[-1]
            lines.append(f"event: {name}\nid: {event.get('id')}\ndata: {json.dumps(event)}\n\n")
        return httpx.Response(
            200, content="".join(lines).encode(), headers={"content-type": "text/event-stream"}
        )

    def _export_status(self) -> httpx.Response:
        self.export_polls += 1
        ready = self.export_polls > self.export_polls_before_ready
        status = ("failed" if self.export_fails else "ready") if ready else "running"
        body = {
            "export_id": "e1", "job_id": "j1", "format": "jsonl", "status": status, "created_at": NOW,
            "reason": "the job failed" if status == "failed" else None, "links": {"self": "/exports/e1"},
        }  # fmt: skip
        return httpx.Response(200, json=body, headers={"retry-after": "0"})


def job_events() -> list[dict[str, Any]]:
    """A run of 2 items as the gateway streams it: snapshot, started, items, progress, completed."""
    snapshot = {"job_id": "j1", "status": "queued", "requested": 2, "counts": {"succeeded": 0}, "usage": {}}
    return [
        {"id": None, "type": "snapshot", "time": NOW, "data": snapshot},
        {
            "id": "ev1",
            "type": "llmts.generation.started",
            "time": NOW,
            "data": {"job_id": "j1", "requested": 2},
        },
        {
            "id": "ev2",
            "type": "llmts.generation.item_generated",
            "time": NOW,
            "data": {"job_id": "j1", "index": 0},
        },
        {
            "id": "ev3",
            "type": "llmts.generation.progress",
            "time": NOW,
            "data": {
                "job_id": "j1",
                "requested": 2,
                "succeeded": 1,
                "rejected": 0,
                "in_flight": 1,
                "attempts": 1,
                "usage": {"prompt_tokens": 5, "completion_tokens": 5, "cost_usd": 0.001},
                "eta_seconds": 3,
            },
        },
        {
            "id": "ev4",
            "type": "llmts.generation.item_generated",
            "time": NOW,
            "data": {"job_id": "j1", "index": 1},
        },
        {
            "id": "ev5",
            "type": "llmts.generation.completed",
            "time": NOW,
            "data": {
                "job_id": "j1",
                "status": "completed",
                "requested": 2,
                "succeeded": 2,
                "rejected": 0,
                "attempts": 2,
                "usage": {"cost_usd": 0.002},
                "duration_seconds": 1.5,
            },
        },
        {"id": "ev6", "type": "llmts.generation.progress", "time": NOW, "data": {"job_id": "j1"}},
    ]
