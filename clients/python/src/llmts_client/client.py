"""``Client``: the public API with blocking calls (httpx + websockets' sync client); ``AsyncClient`` is the same
with asyncio."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel
from websockets.exceptions import InvalidHandshake, InvalidURI
from websockets.sync.client import connect as ws_connect

from llmts_client import _core
from llmts_client._core import ApiError, ExportFailed, Pager, check, clean_params
from llmts_client.aio import generation_body
from llmts_client.models import (
    Event,
    Export,
    Imported,
    Item,
    Job,
    JobAccepted,
    Model,
    Page,
    Result,
    Template,
    TemplateSummary,
    Tokens,
    User,
    ValidationReport,
)

M = TypeVar("M", bound=BaseModel)
Transport = Literal["auto", "websocket", "sse"]


class Client:
    """The gateway's public API. Log in (``login``) or pass tokens; an expired access token is refreshed once
    with the refresh token and the request retried; ``on_tokens`` is told of every new pair (to store it)."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        access_token: str | None = None,
        refresh_token: str | None = None,
        timeout: float = 30.0,
        poll_interval: float = 1.0,
        transport: httpx.BaseTransport | None = None,
        on_tokens: Callable[[Tokens], None] | None = None,
    ) -> None:
        self.base_url = (base_url or _core.default_url()).rstrip("/")
        self.access_token = access_token
        self.refresh_token = refresh_token
        self.poll_interval = poll_interval
        self.on_tokens = on_tokens
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={"user-agent": _core.USER_AGENT},
        )
        self._refresh_lock = threading.Lock()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ----------------------------------------------------------------------------------------- plumbing
    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.access_token}"} if self.access_token else {}

    def request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        """Send, refresh the access token once on a 401 and retry; raise ``ApiError`` on a non-2xx answer."""
        sent_with = self.access_token
        resp = self._http.request(method, path, json=json, params=params, headers=self._headers())
        if _core.should_refresh(resp, path, bool(self.refresh_token)):
            self._refresh_after(sent_with)
            resp = self._http.request(method, path, json=json, params=params, headers=self._headers())
        return check(resp)

    def _refresh_after(self, sent_with: str | None) -> None:
        with self._refresh_lock:
            if self.access_token == sent_with:  # not already refreshed by a concurrent call
                self.refresh()

    def _get(self, path: str, model: type[M], **params: Any) -> M:
        resp = self.request("GET", path, params=clean_params(params))
        return model.model_validate(resp.json())

    def _pages(self, path: str, model: type[M], params: dict[str, Any]) -> Iterator[M]:
        pager = Pager(clean_params(params))
        while not pager.done:
            resp = self.request("GET", path, params=pager.next_params())
            page = Page[model].model_validate(resp.json())  # type: ignore[valid-type]
            pager.advance(page)
            yield from page.items

    def _store(self, tokens: Tokens) -> Tokens:
        self.access_token, self.refresh_token = tokens.access_token, tokens.refresh_token
        if self.on_tokens is not None:
            self.on_tokens(tokens)
        return tokens

    # ----------------------------------------------------------------------------------------- auth
    def register(self, email: str, password: str, name: str | None = None) -> User:
        body = {"email": email, "password": password, "name": name}
        return User.model_validate((self.request("POST", "/auth/register", json=body)).json())

    def login(self, email: str, password: str) -> Tokens:
        resp = self.request("POST", "/auth/login", json={"email": email, "password": password})
        return self._store(Tokens.model_validate(resp.json()))

    def refresh(self) -> Tokens:
        if not self.refresh_token:
            raise ApiError(401, "no_refresh_token", "log in first")
        resp = self._http.post("/auth/refresh", json={"refresh_token": self.refresh_token})
        return self._store(Tokens.model_validate(check(resp).json()))

    def me(self) -> User:
        return self._get("/auth/me", User)

    # ----------------------------------------------------------------------------------------- catalog
    def models(self, **filters: Any) -> Iterator[Model]:
        """Every model matching the filters (``provider``, ``free``, ``q``, ``min_context``, ``sort`` …)."""
        return self._pages("/providers/models", Model, filters)

    # ----------------------------------------------------------------------------------------- templates
    def templates(self, **filters: Any) -> Iterator[TemplateSummary]:
        """Every template I can see matching the filters (``category``, ``tag``, ``q``, ``owner="me"`` …)."""
        return self._pages("/templates", TemplateSummary, filters)

    def template(self, template_id: str) -> Template:
        return self._get(f"/templates/{template_id}", Template)

    def examples(self) -> list[dict[str, Any]]:
        items = (self.request("GET", "/templates/examples")).json().get("items", [])
        return [i for i in items if isinstance(i, dict)]

    def import_example(self, example_id: str, *, name: str | None = None) -> Imported:
        body = {"name": name} if name else None
        resp = self.request("POST", f"/templates/examples/{example_id}/import", json=body)
        return _core.parse_import(resp.json())

    def import_llm_data_gen(self, config: dict[str, Any], *, name: str | None = None) -> Imported:
        params = clean_params({"name": name})
        resp = self.request("POST", "/templates/import/llm-data-gen", json=config, params=params)
        return _core.parse_import(resp.json())

    def validate_template(self, document: dict[str, Any]) -> ValidationReport:
        resp = self.request("POST", "/templates/validate", json=document)
        return ValidationReport.model_validate(resp.json())

    def preview_template(self, template_id: str, **body: Any) -> dict[str, Any]:
        """Rendered prompts of one item, the provider request body and estimates (``index``, ``variables``…)."""
        resp = self.request("POST", "/templates/preview", json={"template_id": template_id, **body})
        answer: dict[str, Any] = resp.json()
        return answer

    # ----------------------------------------------------------------------------------------- generation
    def generate(
        self,
        template_id: str,
        *,
        count: int | None = None,
        model: str | dict[str, Any] | None = None,
        **options: Any,
    ) -> JobAccepted:
        """Start a job (202). ``model`` is a model id or ``{id, provider, temperature, …}``; other options
        (``variables``, ``tasks``, ``concurrency``, ``max_cost_usd`` …) are sent as they are."""
        body = generation_body(template_id, count, model, options)
        return JobAccepted.model_validate((self.request("POST", "/generate", json=body)).json())

    def job(self, job_id: str) -> Job:
        return self._get(_core.job_path(job_id), Job)

    def cancel(self, job_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = (self.request("DELETE", _core.job_path(job_id))).json()
        return answer

    def wait(self, job_id: str, *, max_wait: float | None = None) -> Job:
        """Poll the job's status until it ends."""
        deadline = None if max_wait is None else time.monotonic() + max_wait
        while True:
            job = self.job(job_id)
            if job.terminal:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.status} after {max_wait} s")
            time.sleep(self.poll_interval)

    def result_page(self, job_id: str, *, limit: int = 100, offset: int = 0) -> Result:
        return self._get(f"{_core.job_path(job_id)}/result", Result, limit=limit, offset=offset)

    def result(self, job_id: str, *, include_rejected: bool = False) -> Iterator[Item]:
        """Every item of a job, page after page (accepted items; rejected ones too if asked)."""
        params = {"include": "rejected" if include_rejected else None}
        return self._pages(f"{_core.job_path(job_id)}/result", Item, params)

    def history(self, **filters: Any) -> Iterator[Job]:
        """My jobs, newest first (``status``, ``template_id``, ``model``, ``from_``, ``to``, ``q``)."""
        return self._pages("/history", Job, filters)

    def watch(self, job_id: str, *, transport: Transport = "auto") -> Iterator[Event]:
        """The job's live events: a ``snapshot`` (its status), then each event until a terminal one.
        WebSocket first; if it cannot connect, Server-Sent Events (``transport`` forces one)."""
        if transport != "sse":
            try:
                with ws_connect(_core.ws_url(self.base_url, job_id), open_timeout=10) as ws:
                    ws.send(json.dumps({"token": self.access_token or ""}))
                    for message in ws:
                        event = _core.ws_message(message)
                        yield event
                        if event.terminal:
                            return
                return
            except (OSError, InvalidHandshake, InvalidURI, TimeoutError):
                if transport == "websocket":
                    raise
        for event in self._sse(job_id):
            yield event

    def _sse(self, job_id: str) -> Iterator[Event]:
        path = f"{_core.job_path(job_id)}/events"
        for attempt in (1, 2):
            sent_with = self.access_token
            with self._http.stream("GET", path, headers=self._headers(), timeout=None) as resp:
                if attempt == 1 and _core.should_refresh(resp, path, bool(self.refresh_token)):
                    self._refresh_after(sent_with)
                    continue
                if resp.status_code >= 400:
                    resp.read()
                    raise ApiError.from_response(resp)
                decoder = _core.SseDecoder()
                for line in resp.iter_lines():
                    event = decoder.feed(line)
                    if event is not None:
                        yield event
                        if event.terminal:
                            return
                return

    # ----------------------------------------------------------------------------------------- exports
    def export(self, job_id: str, format: str = "json", options: dict[str, Any] | None = None) -> Export:
        """Request an export (202): its id and status; ``download`` waits for it."""
        body = {"job_id": job_id, "format": format, "options": options or {}}
        return Export.model_validate((self.request("POST", "/exports", json=body)).json())

    def export_status(self, export_id: str) -> Export:
        return self._get(_core.export_path(export_id), Export)

    def exports(
        self, *, job_id: str | None = None, format: str | None = None, limit: int = 100
    ) -> list[Export]:
        """My exports, newest first (the latest ``limit``)."""
        params = clean_params({"job_id": job_id, "format": format, "limit": limit})
        resp = self.request("GET", "/exports", params=params)
        return Page[Export].model_validate(resp.json()).items

    def download(self, export: Export | str, path: str | Path = ".", *, max_wait: float = 600.0) -> Path:
        """Wait until the export is ready (through its queued/running answers), then save it: into ``path``
        if it is a directory (under the server's file name), else as ``path``. Raises ``ExportFailed``."""
        export_id = export if isinstance(export, str) else export.export_id
        deadline = time.monotonic() + max_wait
        while True:
            resp = self.request("GET", _core.export_path(export_id))
            status = Export.model_validate(resp.json())
            if status.status == "failed":
                raise ExportFailed(409, "export_failed", status.reason or "the export failed")
            if status.status == "ready":
                saved = self._save(export_id, Path(path))
                if saved is not None:
                    return saved
            if time.monotonic() > deadline:
                raise TimeoutError(f"export {export_id} still {status.status} after {max_wait} s")
            time.sleep(_core.retry_after(resp, self.poll_interval))

    def _save(self, export_id: str, path: Path) -> Path | None:
        """Stream the file to ``path`` (None: not ready after all, 409)."""
        url = f"{_core.export_path(export_id)}/download"
        for attempt in (1, 2):
            sent_with = self.access_token
            with self._http.stream("GET", url, headers=self._headers(), timeout=None) as resp:
                if attempt == 1 and _core.should_refresh(resp, url, bool(self.refresh_token)):
                    self._refresh_after(sent_with)
                    continue
                if resp.status_code == 409:
                    return None
                if resp.status_code >= 400:
                    resp.read()
                    raise ApiError.from_response(resp)
                target = path / _core.filename_of(resp, f"{export_id}.bin") if path.is_dir() else path
                partial = target.with_name(target.name + ".part")
                with partial.open("wb") as out:
                    for chunk in resp.iter_bytes():
                        out.write(chunk)
                partial.replace(target)
                return target
        return None

    def export_to(
        self, job_id: str, path: str | Path, format: str = "json", options: dict[str, Any] | None = None
    ) -> Path:
        """Request an export of a job and save it when ready (waits for the job to end first)."""
        return self.download(self.export(job_id, format, options), path)
