"""Fake OpenRouter (``/api/v1``) speaking the wire format of providers-api.md part A.

Run: ``python -m tests.fakes.openrouter --port 18080 --latency-ms 200`` (any FakeConfig field as ``--flag`` or
``FAKE_<FIELD>`` env). In-process: ``create_app(FakeState(...))`` with ``tests.fakes.server.RunningFake``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from email.utils import formatdate
from pathlib import Path
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
    with_place,
)
from tests.fakes.openrouter_books import Books, read_price_factor
from tests.fakes.quality import quality_answer

CATALOG_PATH = Path(__file__).parent / "data" / "openrouter_models.json"
_ECHO_HEADERS = ("http-referer", "x-openrouter-title", "x-title", "user-agent", "x-stainless-retry-count")
_FALLBACK_PRICE = (1.5e-07, 6e-07)  # for "-1" (variable-price) router models


def load_catalog(path: Path = CATALOG_PATH) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["data"]
    return data


def _err(
    status: int, message: str, metadata: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    err: dict[str, Any] = {"message": message, "code": status}
    if metadata is not None:
        err["metadata"] = metadata
    return JSONResponse({"error": err, "user_id": "user_fake"}, status_code=status, headers=headers)


def create_app(state: FakeState | None = None, catalog: list[dict[str, Any]] | None = None) -> Starlette:
    state = state or FakeState()
    books = Books()
    state.reset_hooks.append(books.reset)
    models = catalog if catalog is not None else load_catalog()
    by_id = {m["id"]: m for m in models}
    prices: dict[str, tuple[float, float]] = {}
    for m in models:
        p = float(m["pricing"].get("prompt", 0) or 0)
        c = float(m["pricing"].get("completion", 0) or 0)
        prices[m["id"]] = _FALLBACK_PRICE if p < 0 or c < 0 else (p, c)
    text_models_body = json.dumps(
        {
            "data": [m for m in models if "text" in m["architecture"]["output_modalities"]],
            "links": {"next": None},
        }
    ).encode()

    def auth_error(request: Request) -> Response | None:
        key = state.config.api_key
        if not key:
            return None
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer ") or header[7:] != key:
            msg = "No auth credentials found" if not header else "User not found."
            return _err(401, msg)
        return None

    def down() -> Response | None:
        if state.config.down:
            return _err(
                503,
                "Service temporarily unavailable",
                {"provider_name": None},
                _retry_headers(state.config.retry_after_s),
            )
        return None

    async def list_models(request: Request) -> Response:
        state.note_request("/models")
        if (r := down()) or (r := auth_error(request)):
            return r
        q = request.query_params
        if not q:
            return Response(text_models_body, media_type="application/json")
        wanted_out = {s for s in q.get("output_modalities", "text").split(",") if s}
        wanted_in = {s for s in q.get("input_modalities", "").split(",") if s}
        params = {s for s in q.get("supported_parameters", "").split(",") if s}
        out = []
        for m in models:
            arch = m["architecture"]
            if "all" not in wanted_out and not wanted_out & set(arch["output_modalities"]):
                continue
            if wanted_in and not wanted_in <= set(arch["input_modalities"]):
                continue
            if params and not params <= set(m["supported_parameters"]):
                continue
            out.append(m)
        return JSONResponse({"data": out, "total_count": len(out), "links": {"next": None}})

    async def models_count(request: Request) -> Response:
        state.note_request("/models/count")
        if (r := down()) or (r := auth_error(request)):
            return r
        return JSONResponse({"data": {"count": len(models)}})

    async def one_model(request: Request) -> Response:
        state.note_request("/model")
        if (r := down()) or (r := auth_error(request)):
            return r
        model_id = request.path_params["model_id"]
        if model_id not in by_id:
            return _err(404, f"Model {model_id} not found")
        return JSONResponse({"data": by_id[model_id]})

    async def key(request: Request) -> Response:
        state.note_request("/key")
        if (r := down()) or (r := auth_error(request)):
            return r
        if request.headers.get("authorization", "") in ("", "Bearer "):
            return _err(401, "No auth credentials found")
        limit = state.config.credits_limit
        used = round(state.cost_usd, 10)
        return JSONResponse(
            {
                "data": {
                    "label": "sk-or-v1-fak...e00",
                    "limit": limit,
                    "limit_remaining": None if limit is None else round(limit - used, 10),
                    "limit_reset": None,
                    "include_byok_in_limit": False,
                    "usage": used,
                    "usage_daily": used,
                    "usage_weekly": used,
                    "usage_monthly": used,
                    "byok_usage": 0,
                    "byok_usage_daily": 0,
                    "byok_usage_weekly": 0,
                    "byok_usage_monthly": 0,
                    "is_free_tier": limit is None,
                    "is_management_key": False,
                    "is_provisioning_key": False,
                    "expires_at": None,
                    "creator_user_id": "user_fake",
                    "rate_limit": {
                        "requests": 1000,
                        "interval": "1h",
                        "note": "This field is deprecated and safe to ignore.",
                    },
                }
            }
        )

    async def chat(request: Request) -> Response:
        return await with_place(state, request, _timed_chat, _over_capacity, "/chat/completions", 429)

    async def _timed_chat(request: Request) -> Response:
        return await state.timed(_chat, request)

    async def _chat(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            state.note_request("/chat/completions")
            return _err(400, "Invalid JSON body")
        seen = {k: v for k, v in request.headers.items() if k in _ECHO_HEADERS}
        state.note_request("/chat/completions", body, seen)
        if r := auth_error(request):
            state.account("401")
            return r
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            state.account("400")
            return _err(400, 'Input required: specify "messages"')
        outcome = state.next_outcome()
        kind = outcome["kind"]
        if kind == "status":
            await state.sleep({})
            return _status_error(state, int(outcome["status"]), outcome)
        requested = str(body.get("model") or "openai/gpt-4o-mini")
        lookup = requested.removesuffix(":online")
        model = by_id.get(lookup)
        if kind == "invalid_model" or (model is None and not state.config.accept_unknown_models):
            state.account("invalid_model")
            return _err(400, f"{requested} is not a valid model ID")
        messages = body["messages"]
        prompt_tokens = prompt_tokens_of(messages)
        context = (model or {}).get("context_length") or 128000
        max_tokens = int(body.get("max_tokens") or 0)
        if kind == "context_too_long" or prompt_tokens + max_tokens > context:
            state.account("context_too_long")
            return _err(
                400,
                (
                    f"This endpoint's maximum context length is {context} tokens. However, you requested about "
                    f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} of text input, {max_tokens} in the output). "
                    'Please reduce the length of either one, or use the "middle-out" transform to compress your prompt automatically.'
                ),
                {"error_type": "context_length_exceeded", "provider_name": None},
            )
        if not body.get("stream"):
            await state.sleep(outcome)

        rf = body.get("response_format") or {}
        schema: dict[str, Any] | None = None
        json_mode = False
        if rf.get("type") == "json_schema":
            schema = (rf.get("json_schema") or {}).get("schema")
        elif rf.get("type") == "json_object":
            json_mode = True
            schema = schema_from_messages(messages)
        quality = quality_answer(state, schema, body) if kind == "ok" else None  # judges, near-duplicates
        content, finish = (
            (quality, "stop") if quality is not None else synthesise(state, schema, json_mode, outcome)
        )
        completion_tokens = estimate_tokens(content) if content else 0
        served_model = lookup if lookup != "openrouter/auto" else "openai/gpt-4o-mini"
        p_price, c_price = prices.get(lookup, _FALLBACK_PRICE)
        cached, written = books.prompt_cache(served_model, messages, estimate_tokens)
        write_factor = 1.25 if served_model.startswith("anthropic/") else 1.0
        prompt_cost = (
            (prompt_tokens - cached - written) * p_price
            + cached * p_price * read_price_factor(served_model)
            + written * p_price * write_factor
        )
        cost = round(prompt_cost + completion_tokens * c_price, 12)
        upstream = _upstream_name(served_model)
        gen_id = f"gen-{int(time.time())}-{secrets.token_hex(10)}"
        created = int(time.time())
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {
                "cached_tokens": cached,
                "cache_write_tokens": written,
                "audio_tokens": 0,
            },
            "completion_tokens_details": {"reasoning_tokens": 0},
            "cost": cost,
            "is_byok": False,
            "cost_details": {
                "upstream_inference_cost": None,
                "upstream_inference_prompt_cost": round(prompt_cost, 12),
                "upstream_inference_completions_cost": round(completion_tokens * c_price, 12),
            },
        }
        # the provider's books: billed whatever happens to the answer on its way (an abandoned stream included)
        books.record(
            gen_id,
            model=served_model,
            provider_name=upstream,
            total_cost=cost,
            cache_discount=round(cached * p_price * (1 - read_price_factor(served_model)), 12),
            tokens_prompt=prompt_tokens,
            tokens_completion=completion_tokens,
            native_tokens_prompt=prompt_tokens,
            native_tokens_completion=completion_tokens,
            native_tokens_cached=cached,
            streamed=bool(body.get("stream")),
            cancelled=False,
            finish_reason=finish,
            native_finish_reason=finish,
            is_byok=False,
            api_type="completions",
        )
        headers = {"X-Generation-Id": gen_id}
        if body.get("stream"):
            return StreamingResponse(
                _sse(
                    state,
                    outcome,
                    content,
                    finish,
                    usage,
                    gen_id,
                    created,
                    served_model,
                    upstream,
                    prompt_tokens,
                    cost,
                ),
                media_type="text/event-stream",
                headers={**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        if kind in ("midstream_error", "error_200"):
            state.account(kind)
            return JSONResponse(
                {
                    "id": gen_id,
                    "provider": upstream,
                    "model": served_model,
                    "object": "chat.completion",
                    "created": created,
                    "system_fingerprint": None,
                    "error": {
                        "code": 502,
                        "message": "Provider returned error",
                        "metadata": {"provider_name": upstream, "raw": "upstream connection reset"},
                    },
                    "choices": [
                        {
                            "index": 0,
                            "logprobs": None,
                            "finish_reason": "error",
                            "native_finish_reason": "error",
                            "message": {
                                "role": "assistant",
                                "content": "",
                                "refusal": None,
                                "reasoning": None,
                            },
                            "error": {"code": 502, "message": "Provider returned error"},
                        }
                    ],
                },
                headers=headers,
            )
        if kind == "disconnect":
            state.account("disconnect")
            return StreamingResponse(
                drop_connection(content),
                media_type="application/json",
                headers={**headers, "Content-Length": str(len(content) + 500)},
            )
        state.account(kind, prompt_tokens, completion_tokens, cost)
        return JSONResponse(
            {
                "id": gen_id,
                "provider": upstream,
                "model": served_model,
                "object": "chat.completion",
                "created": created,
                "system_fingerprint": "fp_fake",
                "choices": [
                    {
                        "index": 0,
                        "logprobs": None,
                        "finish_reason": finish,
                        "native_finish_reason": finish,
                        "message": {
                            "role": "assistant",
                            "content": content,
                            "refusal": None,
                            "reasoning": None,
                        },
                    }
                ],
                "usage": usage,
            },
            headers=headers,
        )

    async def generation(request: Request) -> Response:
        state.note_request("/generation")
        if r := auth_error(request):
            return r
        gen_id = request.query_params.get("id")
        if not gen_id:
            return _err(400, "Missing required parameter: id")
        record = books.get(gen_id)
        if record is None:
            return _err(404, f"Generation {gen_id} not found")
        return JSONResponse({"data": record})

    routes = [
        Route("/api/v1/models", list_models, methods=["GET"]),
        Route("/api/v1/generation", generation, methods=["GET"]),
        Route("/api/v1/models/count", models_count, methods=["GET"]),
        Route("/api/v1/model/{model_id:path}", one_model, methods=["GET"]),
        Route("/api/v1/key", key, methods=["GET"]),
        Route("/api/v1/auth/key", key, methods=["GET"]),
        Route("/api/v1/chat/completions", chat, methods=["POST"]),
        *control_routes(state),
    ]
    app = Starlette(routes=routes)
    app.state.fake = state
    app.state.books = books
    return app


def _upstream_name(model_id: str) -> str:
    vendor = model_id.split("/", 1)[0]
    return {
        "openai": "OpenAI",
        "anthropic": "Anthropic",
        "google": "Google AI Studio",
        "meta-llama": "DeepInfra",
        "mistralai": "Mistral",
        "deepseek": "DeepSeek",
        "qwen": "Alibaba",
        "x-ai": "xAI",
    }.get(vendor, "Together")


def _over_capacity() -> Response:
    # a concurrency limit, not a rate window: no Retry-After, no X-RateLimit-Reset
    return _err(
        429,
        "Rate limit exceeded: too many concurrent requests",
        {"provider_name": None, "error_type": "rate_limit_exceeded"},
    )


def _retry_headers(retry_after_s: float | None) -> dict[str, str]:
    if retry_after_s is None:
        return {}
    return {
        "Retry-After": str(int(retry_after_s)) if float(retry_after_s).is_integer() else str(retry_after_s)
    }


def _status_error(state: FakeState, status: int, outcome: dict[str, Any]) -> Response:
    state.account(str(status))
    retry_after = outcome.get("retry_after_s", state.config.retry_after_s)
    msg = outcome.get("message")
    if status == 429:
        reset_ms = int((time.time() + (retry_after or 60)) * 1000)
        rl = {"X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset_ms)}
        headers = {**rl, **_retry_headers(retry_after)}
        if outcome.get("http_date"):
            headers["Retry-After"] = formatdate(time.time() + (retry_after or 0), usegmt=True)
        return _err(
            429,
            msg or "Rate limit exceeded: free-models-per-min.",
            {"headers": rl, "provider_name": None, "error_type": "rate_limit_exceeded"},
            headers,
        )
    if status == 402:
        return _err(
            402,
            msg
            or (
                "This request requires more credits, or fewer max_tokens. You requested up to 32000 "
                "tokens, but can only afford 27342. To increase, visit "
                "https://openrouter.ai/settings/credits and upgrade to a paid account"
            ),
            {"provider_name": None, "limit_source": "openrouter_credits"},
        )
    if status == 401:
        return _err(401, msg or "User not found.")
    if status == 403:
        return _err(403, msg or "Key disabled", {"reasons": [], "provider_name": None})
    if status == 404:
        return _err(404, msg or "No endpoints found for this model.")
    if status >= 500:
        text = {
            502: "Provider returned error",
            503: "No available model provider that meets your routing requirements",
        }
        return _err(
            status,
            msg or text.get(status, "Internal Server Error"),
            {"provider_name": None},
            _retry_headers(retry_after) if status == 503 else None,
        )
    return _err(status, msg or "Bad request")


async def _sse(
    state: FakeState,
    outcome: dict[str, Any],
    content: str,
    finish: str,
    usage: dict[str, Any],
    gen_id: str,
    created: int,
    model: str,
    upstream: str,
    prompt_tokens: int,
    cost: float,
) -> AsyncIterator[bytes]:
    cfg = state.config
    kind = outcome["kind"]
    if cfg.keepalive_comments:
        yield b": OPENROUTER PROCESSING\n\n"
    delay = state.delay_s(outcome)
    if delay > 0:
        await asyncio.sleep(delay)
        if cfg.keepalive_comments:
            yield b": OPENROUTER PROCESSING\n\n"
    head = {
        "id": gen_id,
        "provider": upstream,
        "model": model,
        "object": "chat.completion.chunk",
        "created": created,
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> bytes:
        obj = {
            **head,
            "choices": [
                {
                    "index": 0,
                    "delta": delta,
                    "finish_reason": finish_reason,
                    "native_finish_reason": finish_reason,
                    "logprobs": None,
                }
            ],
            **extra,
        }
        return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"

    size = max(1, cfg.stream_chunk_chars)
    pieces = [content[i : i + size] for i in range(0, len(content), size)] or [""]
    if kind in ("midstream_error", "error_200", "disconnect"):
        pieces = pieces[: max(1, len(pieces) // 2)]
    for sent, piece in enumerate(pieces):
        if (pause := state.stream_pause_s(sent)) > 0:
            await asyncio.sleep(pause)
        yield chunk({"role": "assistant", "content": piece})
    if kind in ("midstream_error", "error_200"):
        state.account("midstream_error")
        err = {
            **head,
            "error": {
                "code": 502,
                "message": "Provider disconnected mid-stream",
                "metadata": {"error_type": "provider_unavailable", "provider_name": upstream},
            },
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
        }
        yield b"data: " + json.dumps(err).encode() + b"\n\n"
        return
    if kind == "disconnect":
        state.account("disconnect")
        raise FakeDisconnect
    yield chunk({"role": "assistant", "content": ""}, finish, system_fingerprint="fp_fake")
    shape = cfg.usage_chunk_shape
    if shape == "alternate":
        shape = "empty_choices" if state.chat_calls % 2 else "empty_delta"
    if shape == "empty_choices":  # the documented shape
        yield b"data: " + json.dumps({**head, "choices": [], "usage": usage}).encode() + b"\n\n"
    else:  # the observed shape: one choice with an empty delta
        yield chunk({"role": "assistant", "content": ""}, None, usage=usage)
    yield b"data: [DONE]\n\n"
    state.account(kind, prompt_tokens, usage["completion_tokens"], cost)


def main(argv: list[str] | None = None) -> None:
    serve(create_app, argv, "tests.fakes.openrouter", 18080)


if __name__ == "__main__":
    main()
