"""Fake OpenAI-compatible server (``/v1``): the dialect of OpenAI, vLLM, llama.cpp, LM Studio and Ollama's /v1.

Same ``/chat/completions`` format as the fake OpenRouter, but what tells the OpenAI dialect apart is served here:
``/v1/models`` as ``{"object": "list", "data": [{id, object, created, owned_by, max_model_len?}]}``; errors as
``{"error": {message, type, param, code}}``; 404 ``model_not_found`` for an unknown model; 400 for an unrecognised
body field (OpenAI refuses OpenRouter's ``provider`` / ``usage``); no cost in ``usage``; in a stream a usage chunk
(``choices: []``) only when ``stream_options.include_usage`` is true, and a mid-stream error as a bare
``data: {"error": …}`` line. ``json_schema=False`` makes it a server without json_schema support (400 on
``response_format: json_schema``, like older llama.cpp / TGI builds).

Run: ``python -m tests.fakes.openai_compat --port 18082`` → ``OPENAI_COMPATIBLE_BASE_URL=http://127.0.0.1:18082/v1``
(any FakeConfig field as ``--flag`` / ``FAKE_<FIELD>``). Content synthesis, scripts, rates and the ``/_fake/*``
control routes are the shared ones of ``tests.fakes.common``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.common import (
    FakeDisconnect,
    FakeState,
    control_routes,
    drop_connection,
    estimate_tokens,
    prompt_tokens_of,
    schema_from_messages,
    serve,
    synthesise,
)
from tests.fakes.openai_batches import BatchStore, batch_routes

MODELS: list[dict[str, Any]] = [
    {"id": "meta-llama/Llama-3.1-8B-Instruct", "owned_by": "vllm", "max_model_len": 8192},
    {"id": "qwen2.5-7b-instruct", "owned_by": "organization_owner"},
    {"id": "gpt-4o-mini", "owned_by": "system"},
]
KNOWN_FIELDS = frozenset(
    {
        "model", "messages", "temperature", "top_p", "n", "stop", "max_tokens", "max_completion_tokens", "seed",
        "response_format", "stream", "stream_options", "presence_penalty", "frequency_penalty", "logit_bias",
        "logprobs", "top_logprobs", "user", "tools", "tool_choice", "parallel_tool_calls",
    }
)  # fmt: skip
_CONTEXT = 8192


def error(
    status: int,
    message: str,
    *,
    kind: str,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def create_app(
    state: FakeState | None = None, models: list[dict[str, Any]] | None = None, *, json_schema: bool = True
) -> Starlette:
    state = state or FakeState()
    served = [{"object": "model", "created": 1_733_000_000, **m} for m in (models or MODELS)]
    by_id = {m["id"]: m for m in served}

    def auth_error(request: Request) -> Response | None:
        key = state.config.api_key
        header = request.headers.get("authorization", "")
        if key and header != f"Bearer {key}":
            text = "You didn't provide an API key." if not header else "Incorrect API key provided."
            return error(401, text, kind="invalid_request_error", code="invalid_api_key")
        return None

    async def list_models(request: Request) -> Response:
        state.note_request("/models", {}, _seen(request))
        if state.config.down:
            return error(503, "The server is overloaded or not ready yet.", kind="server_error")
        if r := auth_error(request):
            return r
        return JSONResponse({"object": "list", "data": served})

    async def chat(request: Request) -> Response:
        return await state.timed(_chat, request)

    async def _chat(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            state.note_request("/chat/completions")
            return error(
                400, "We could not parse the JSON body of your request.", kind="invalid_request_error"
            )
        state.note_request("/chat/completions", body, _seen(request))
        if r := auth_error(request):
            state.account("401")
            return r
        if rejected := _invalid(body, json_schema):
            state.account("400")
            return rejected
        outcome = state.next_outcome()
        kind = outcome["kind"]
        if kind == "status":
            await state.sleep({})
            return _status_error(state, int(outcome["status"]), outcome)
        model = str(body["model"])
        if kind == "invalid_model" or model not in by_id:
            state.account("invalid_model")
            return error(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                kind="invalid_request_error",
                code="model_not_found",
            )
        messages = body["messages"]
        prompt_tokens = prompt_tokens_of(messages)
        context = int(by_id[model].get("max_model_len") or _CONTEXT)
        cap = int(body.get("max_tokens") or body.get("max_completion_tokens") or 0)
        if kind == "context_too_long" or prompt_tokens + cap > context:
            state.account("context_too_long")
            return error(
                400,
                f"This model's maximum context length is {context} tokens. However, you requested "
                f"{prompt_tokens + cap} tokens ({prompt_tokens} in the messages, {cap} in the completion).",
                kind="invalid_request_error",
                param="messages",
                code="context_length_exceeded",
            )
        rf = body.get("response_format") or {}
        schema = (rf.get("json_schema") or {}).get("schema") if rf.get("type") == "json_schema" else None
        json_mode = rf.get("type") == "json_object"
        if schema is None:  # json_object, or the schema only in the prompt
            schema = schema_from_messages(messages)
        content, finish = synthesise(state, schema, json_mode, outcome)
        if cap and estimate_tokens(content) > cap:
            content, finish = content[: cap * 4], "length"
        completion_tokens = estimate_tokens(content) if content else 0
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        head = {"id": f"chatcmpl-{secrets.token_hex(12)}", "created": int(time.time()), "model": model}
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                _sse(state, outcome, content, finish, usage if include_usage else None, head),
                media_type="text/event-stream",
            )
        await state.sleep(outcome)
        if kind in ("midstream_error", "error_200"):
            state.account(kind)
            return JSONResponse(
                {**head, "error": {"message": "upstream worker crashed", "type": "server_error"}}
            )
        if kind == "disconnect":
            state.account("disconnect")
            return StreamingResponse(
                drop_connection(content),
                media_type="application/json",
                headers={"Content-Length": str(len(content) + 500)},
            )
        state.account(kind, prompt_tokens, completion_tokens)
        message = {"role": "assistant", "content": content, "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        return JSONResponse(
            {
                **head,
                "object": "chat.completion",
                "system_fingerprint": None,
                "choices": [choice],
                "usage": usage,
            }
        )

    routes = [
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/chat/completions", chat, methods=["POST"]),
        *control_routes(state),
    ]
    app = Starlette(routes=routes)
    app.state.fake = state
    app.state.batches = BatchStore(
        state, app
    )  # the Batch API (files + batches), answered by /chat/completions
    app.router.routes.extend(batch_routes(app.state.batches, auth_error))
    return app


def _seen(request: Request) -> dict[str, str]:
    """Whether (not what) an Authorization header came, and the client's user agent."""
    return {
        "authorization": "present" if "authorization" in request.headers else "absent",
        "user-agent": request.headers.get("user-agent", ""),
    }


def _invalid(body: Any, json_schema: bool) -> Response | None:
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
        return error(400, "'messages' is a required property", kind="invalid_request_error", param="messages")
    if not isinstance(body.get("model"), str):
        return error(400, "you must provide a model parameter", kind="invalid_request_error", param="model")
    unknown = sorted(set(body) - KNOWN_FIELDS)
    if unknown:
        return error(
            400,
            f"Unrecognized request argument supplied: {unknown[0]}",
            kind="invalid_request_error",
            param=unknown[0],
        )
    rf = body.get("response_format")
    if isinstance(rf, dict) and rf.get("type") == "json_schema" and not json_schema:
        return error(
            400,
            "response_format type 'json_schema' is not supported by this server",
            kind="invalid_request_error",
            param="response_format",
        )
    return None


def _status_error(state: FakeState, status: int, outcome: dict[str, Any]) -> Response:
    state.account(str(status))
    retry_after = outcome.get("retry_after_s", state.config.retry_after_s)
    headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
    message = outcome.get("message")
    if status == 429:
        headers |= {"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "0"}
        text = message or "Rate limit reached for requests per min (RPM): Limit 60, Used 60."
        return error(429, text, kind="requests", code="rate_limit_exceeded", headers=headers)
    if status in (401, 403):
        text = message or "You are not allowed to use this model."
        return error(status, text, kind="invalid_request_error", code="invalid_api_key")
    if status == 404:
        return error(404, message or "Not found", kind="invalid_request_error", code="model_not_found")
    if status >= 500:
        text = message or "The server had an error while processing your request."
        return error(status, text, kind="server_error", headers=headers if status == 503 else None)
    return error(status, message or "Bad request", kind="invalid_request_error")


async def _sse(
    state: FakeState,
    outcome: dict[str, Any],
    content: str,
    finish: str,
    usage: dict[str, Any] | None,
    head: dict[str, Any],
) -> AsyncIterator[bytes]:
    delay = state.delay_s(outcome)
    if delay > 0:
        await asyncio.sleep(delay)
    head = {**head, "object": "chat.completion.chunk", "system_fingerprint": None}

    def data(obj: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return data({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]})

    kind = outcome["kind"]
    size = max(1, state.config.stream_chunk_chars)
    pieces = [content[i : i + size] for i in range(0, len(content), size)] or [""]
    if kind in ("midstream_error", "error_200", "disconnect"):
        pieces = pieces[: max(1, len(pieces) // 2)]
    yield chunk({"role": "assistant", "content": ""})
    for sent, piece in enumerate(pieces):
        if (pause := state.stream_pause_s(sent)) > 0:
            await asyncio.sleep(pause)
        yield chunk({"content": piece})
    if kind in ("midstream_error", "error_200"):
        state.account("midstream_error")
        yield data({"error": {"message": "upstream worker crashed mid-stream", "type": "server_error"}})
        return
    if kind == "disconnect":
        state.account("disconnect")
        raise FakeDisconnect
    yield chunk({}, finish)
    if usage is not None:
        yield data({**head, "choices": [], "usage": usage})
    yield b"data: [DONE]\n\n"
    if usage is None:
        state.account(kind)
    else:
        state.account(kind, usage["prompt_tokens"], usage["completion_tokens"])


def main(argv: list[str] | None = None) -> None:
    serve(create_app, argv, "tests.fakes.openai_compat", 18082)


if __name__ == "__main__":
    main()
