"""The OpenAI Batch API on the fake OpenAI-compatible server: ``/v1/files`` and ``/v1/batches``.

What the real API does (platform.openai.com/docs/guides/batch and the API reference), in small:
- ``POST /v1/files`` (multipart: ``file``, ``purpose=batch``) stores a JSONL file of request lines
  ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {…}}``;
- ``POST /v1/batches {input_file_id, endpoint, completion_window: "24h", metadata?}`` validates the file
  (``validating``; a bad line or a duplicate ``custom_id`` → ``failed`` with ``errors.data[{code, message, line}]``),
  then runs it (``in_progress``), then ``finalizing`` → ``completed`` with ``output_file_id`` (lines answered 200) and
  ``error_file_id`` (the others), and ``request_counts {total, completed, failed}``;
- ``GET /v1/batches`` (newest first, ``limit`` / ``after``), ``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel`` (``cancelling`` → ``cancelled``, the lines done so far
  in the output file), ``GET /v1/files/{id}/content``; past the window a batch is ``expired``: what was done is in the
  output file and each line not done is in the error file with code ``batch_expired``.
- an output line: ``{"id": "batch_req_…", "custom_id", "response": {"status_code", "request_id", "body"},
  "error": null}``; an error line has ``response`` with a non-200 ``status_code`` (and its error body), or
  ``response: null`` and ``error {code, message}``.

Each line is answered by the server's own ``/v1/chat/completions`` (in process, through ASGI), so its outcomes,
scripts, latency and accounting are the chat endpoint's. Fake knobs (``FakeConfig``): ``batch_concurrency`` lines
at once, ``batch_start_delay_ms`` queueing before a batch starts, ``batch_window_ms`` (0 = no expiry) as the window.
Batch lines cost the published batch discount (50 % of the sync price): providers that speak this dialect return no
cost, so the client prices them (``OPENAI_COMPATIBLE_BATCH_DISCOUNT``). The fake records every submitted line's custom
id: ``GET /_fake/batches`` says how many lines were submitted more than once (a client that resubmits after a
restart shows there).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections import Counter
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.common import FakeState

TERMINAL = ("completed", "failed", "expired", "cancelled")


def _error(status: int, message: str, param: str | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}}
    return JSONResponse(body, status_code=status)


def parse_multipart(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """``multipart/form-data`` → {field: (filename, bytes)} (the stdlib's MIME parser; a fake needs no more)."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\nMIME-Version: 1.0\r\n\r\n" + raw
    )
    fields: dict[str, tuple[str | None, bytes]] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            fields[name] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return fields


class BatchStore:
    """Files and batches of one fake server, and the tasks running the batches."""

    def __init__(self, state: FakeState, app: Any) -> None:
        self.state = state
        self.app = app
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.lines_served = 0
        self.submitted: Counter[str] = Counter()  # custom id → times it was submitted in a created batch
        state.reset_hooks.append(self.reset)

    def reset(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        self.files.clear()
        self.contents.clear()
        self.batches.clear()
        self.tasks.clear()
        self.lines_served = 0
        self.submitted.clear()

    def submissions(self) -> dict[str, Any]:
        """What clients submitted: batches, lines, and lines submitted more than once (each extra time counts)."""
        return {
            "batches": len(self.batches),
            "lines_submitted": sum(self.submitted.values()),
            "distinct_lines": len(self.submitted),
            "resubmitted_lines": sum(n - 1 for n in self.submitted.values() if n > 1),
            "lines_served": self.lines_served,
        }

    def store_file(self, data: bytes, filename: str, purpose: str) -> dict[str, Any]:
        file_id = f"file-{secrets.token_hex(12)}"
        meta = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
        }
        self.files[file_id] = meta
        self.contents[file_id] = data
        return meta

    # --- running one batch --------------------------------------------------------------------------------
    def validate(self, data: bytes, endpoint: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        lines: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        seen: set[str] = set()
        for number, raw in enumerate(data.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                errors.append(
                    {"code": "invalid_json_line", "message": "This line is not valid JSON.", "line": number}
                )
                continue
            custom_id = line.get("custom_id") if isinstance(line, dict) else None
            if not isinstance(custom_id, str) or not custom_id:
                errors.append(
                    {"code": "missing_custom_id", "message": "custom_id is required.", "line": number}
                )
            elif custom_id in seen:
                errors.append(
                    {
                        "code": "duplicate_custom_id",
                        "message": f"Duplicate custom_id {custom_id}.",
                        "line": number,
                    }
                )
            elif line.get("url") != endpoint or not isinstance(line.get("body"), dict):
                errors.append(
                    {"code": "invalid_url", "message": f"Each line's url must be {endpoint}.", "line": number}
                )
            else:
                seen.add(custom_id)
                lines.append(line)
        return lines, errors

    async def run(self, batch: dict[str, Any], lines: list[dict[str, Any]]) -> None:
        cfg = self.state.config
        done: dict[str, dict[str, Any]] = {}
        try:
            await asyncio.sleep(cfg.batch_start_delay_ms / 1000.0)
            batch.update(status="in_progress", in_progress_at=int(time.time()))
            window = cfg.batch_window_ms / 1000.0 if cfg.batch_window_ms > 0 else None
            try:
                await asyncio.wait_for(self._answer_all(batch, lines, done), window)
                final = "completed"
            except TimeoutError:
                final = "expired"
        except asyncio.CancelledError:
            final = "cancelled"
        if batch["status"] == "cancelling":
            final = "cancelled"
        batch["status"] = "finalizing"
        batch["finalizing_at"] = int(time.time())
        self._finalize(batch, lines, done, final)

    async def _answer_all(
        self, batch: dict[str, Any], lines: list[dict[str, Any]], done: dict[str, dict[str, Any]]
    ) -> None:
        limit = asyncio.Semaphore(max(1, self.state.config.batch_concurrency))
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://fake", timeout=600) as client:

            async def one(line: dict[str, Any]) -> None:
                async with limit:
                    if batch["status"] == "cancelling":
                        return
                    body = {**line["body"], "stream": False}
                    body.pop("stream_options", None)
                    headers = {"authorization": f"Bearer {self.state.config.api_key or 'x'}"}
                    resp = await client.post("/v1/chat/completions", json=body, headers=headers)
                    try:
                        answer = resp.json()
                    except ValueError:
                        answer = {
                            "error": {"message": "the server dropped the connection", "type": "server_error"}
                        }
                    done[line["custom_id"]] = {"status_code": resp.status_code, "body": answer}
                    self.lines_served += 1
                    counts = batch["request_counts"]
                    counts["completed" if resp.status_code == 200 else "failed"] += 1

            await asyncio.gather(*(one(line) for line in lines))

    def _finalize(
        self, batch: dict[str, Any], lines: list[dict[str, Any]], done: dict[str, dict[str, Any]], final: str
    ) -> None:
        out: list[str] = []
        err: list[str] = []
        for line in lines:
            custom_id = line["custom_id"]
            entry: dict[str, Any] = {"id": f"batch_req_{secrets.token_hex(12)}", "custom_id": custom_id}
            answer = done.get(custom_id)
            if answer is None:
                if final == "cancelled":
                    continue  # never started: neither in the output nor in the errors (as OpenAI)
                code, message = (
                    "batch_expired",
                    "This request could not be executed before the completion window.",
                )
                err.append(
                    json.dumps({**entry, "response": None, "error": {"code": code, "message": message}})
                )
                continue
            response = {
                "status_code": answer["status_code"],
                "request_id": secrets.token_hex(16),
                "body": answer["body"],
            }
            target = out if answer["status_code"] == 200 else err
            target.append(json.dumps({**entry, "response": response, "error": None}, ensure_ascii=False))
        if out:
            batch["output_file_id"] = self.store_file(
                ("\n".join(out) + "\n").encode(), "output.jsonl", "batch_output"
            )["id"]
        if err:
            batch["error_file_id"] = self.store_file(
                ("\n".join(err) + "\n").encode(), "errors.jsonl", "batch_output"
            )["id"]
        batch["status"] = final
        batch[f"{final}_at"] = int(time.time())


def batch_routes(store: BatchStore, auth_error: Any) -> list[Route]:
    async def upload(request: Request) -> Response:
        store.state.note_request("/files")
        if r := auth_error(request):
            return r
        fields = parse_multipart(request.headers.get("content-type", ""), await request.body())
        if "file" not in fields:
            return _error(400, "Missing file", "file")
        purpose = fields.get("purpose", (None, b""))[1].decode()
        if purpose != "batch":
            return _error(400, f"Invalid purpose {purpose!r}: this server takes 'batch' files", "purpose")
        filename, data = fields["file"]
        return JSONResponse(store.store_file(data, filename or "input.jsonl", purpose))

    async def file_meta(request: Request) -> Response:
        if r := auth_error(request):
            return r
        meta = store.files.get(request.path_params["file_id"])
        return JSONResponse(meta) if meta else _error(404, "No such File object")

    async def file_content(request: Request) -> Response:
        store.state.note_request("/files/content")
        if r := auth_error(request):
            return r
        data = store.contents.get(request.path_params["file_id"])
        if data is None:
            return _error(404, "No such File object")
        return Response(data, media_type="application/jsonl")

    async def create(request: Request) -> Response:
        store.state.note_request("/batches")
        if r := auth_error(request):
            return r
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.")
        endpoint = body.get("endpoint")
        if endpoint != "/v1/chat/completions":
            return _error(400, "This server runs batches of /v1/chat/completions only", "endpoint")
        if body.get("completion_window") != "24h":
            return _error(400, "completion_window must be '24h'", "completion_window")
        data = store.contents.get(str(body.get("input_file_id")))
        if data is None:
            return _error(400, "No such input file", "input_file_id")
        now = int(time.time())
        batch: dict[str, Any] = {
            "id": f"batch_{secrets.token_hex(12)}",
            "object": "batch",
            "endpoint": endpoint,
            "errors": None,
            "input_file_id": body["input_file_id"],
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + 86_400,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
        }
        lines, errors = store.validate(data, endpoint)
        store.batches[batch["id"]] = batch
        if errors or not lines:
            errors = errors or [
                {"code": "empty_file", "message": "The input file has no lines.", "line": None}
            ]
            batch.update(status="failed", failed_at=now, errors={"object": "list", "data": errors})
            return JSONResponse(batch)
        batch["request_counts"]["total"] = len(lines)
        store.submitted.update(str(line["custom_id"]) for line in lines)
        store.tasks[batch["id"]] = asyncio.create_task(store.run(batch, lines))
        return JSONResponse(batch)

    async def retrieve(request: Request) -> Response:
        store.state.note_request("/batches/get")
        if r := auth_error(request):
            return r
        batch = store.batches.get(request.path_params["batch_id"])
        return JSONResponse(batch) if batch else _error(404, "No such Batch object")

    async def list_batches(request: Request) -> Response:
        """``GET /v1/batches?limit&after``: newest first, paginated by ``after`` (a batch id)."""
        store.state.note_request("/batches/list")
        if r := auth_error(request):
            return r
        newest = list(reversed(store.batches.values()))
        after = request.query_params.get("after")
        if after:
            ids = [b["id"] for b in newest]
            newest = newest[ids.index(after) + 1 :] if after in ids else []
        limit = max(1, min(100, int(request.query_params.get("limit") or 20)))
        page = newest[:limit]
        return JSONResponse(
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(newest) > limit,
            }
        )

    async def cancel(request: Request) -> Response:
        if r := auth_error(request):
            return r
        batch = store.batches.get(request.path_params["batch_id"])
        if batch is None:
            return _error(404, "No such Batch object")
        if batch["status"] in TERMINAL:
            return _error(409, f"Cannot cancel a batch with status {batch['status']}")
        batch.update(status="cancelling", cancelling_at=int(time.time()))
        task = store.tasks.get(batch["id"])
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)
        return JSONResponse(batch)

    async def submissions(_request: Request) -> Response:
        return JSONResponse(store.submissions())

    return [
        Route("/_fake/batches", submissions, methods=["GET"]),
        Route("/v1/files", upload, methods=["POST"]),
        Route("/v1/files/{file_id}", file_meta, methods=["GET"]),
        Route("/v1/files/{file_id}/content", file_content, methods=["GET"]),
        Route("/v1/batches", create, methods=["POST"]),
        Route("/v1/batches", list_batches, methods=["GET"]),
        Route("/v1/batches/{batch_id}", retrieve, methods=["GET"]),
        Route("/v1/batches/{batch_id}/cancel", cancel, methods=["POST"]),
    ]
