"""Shared machinery of the fake providers: runtime config, fault injection, stats, control routes, CLI."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import random
import re
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.instance import WORDS, broken_variant, generate_instance

# Kinds a `script` entry (or a rate) can produce. A script entry is a kind string, an HTTP status ("429", 503),
# or a dict {"kind": ..., **params}; params: retry_after_s, status, delay_ms, message.
KINDS = {
    "ok",  # normal answer
    "status",  # HTTP error with {"status": N}; 429 gets Retry-After/X-RateLimit-*, 5xx the provider's body
    "context_too_long",  # 400 with the provider's context-length message
    "invalid_model",  # OpenRouter 400 "is not a valid model ID" / Ollama 404 not found
    "midstream_error",  # 200 stream with an error chunk after some content (non-stream: 200 + error body)
    "error_200",  # non-stream 200 carrying an error object (OpenRouter); stream: same as midstream_error
    "invalid_json",  # broken JSON or JSON violating the schema
    "code_fence",  # ```json fenced JSON with prose around it
    "duplicate",  # repeat the previous answer text verbatim
    "free_text",  # prose, ignoring any schema
    "empty",  # empty content
    "length",  # truncated output with finish_reason "length"
    "slow",  # extra delay_ms, then ok
    "disconnect",  # drop the connection mid-response
}


@dataclasses.dataclass
class FakeConfig:
    latency_ms: float = 0.0  # fixed delay before the answer (streams: before the first content chunk)
    jitter_ms: float = 0.0  # + uniform(0, jitter_ms)
    rate_429: float = 0.0
    retry_after_s: float | None = 1.0  # Retry-After on 429/503; None = no header
    rate_5xx: float = 0.0
    status_5xx: int = 503
    rate_402: float = 0.0
    rate_midstream_error: float = 0.0
    rate_invalid_json: float = 0.0
    rate_code_fence: float = 0.0
    rate_duplicate: float = 0.0
    rate_near_duplicate: float = (
        0.0  # share of item answers that nearly repeat an earlier one (tests/fakes/quality.py)
    )
    rate_low_score: float = 0.0  # share of judged items a judge request scores at the minimum (quality.py)
    long_texts: bool = False  # item answers with 30-word texts in every string property (quality.py)
    down: bool = False  # every non-control request → 503
    fail_first_n: int = 0  # the first N chat calls fail with fail_first_status
    fail_first_status: int = 503
    script: list[Any] = dataclasses.field(default_factory=list)  # per-call behaviours, consumed in order
    seed: int = 0
    api_key: str | None = None  # when set, chat/models/key require "Authorization: Bearer <api_key>"
    accept_unknown_models: bool = False
    stream_chunk_chars: int = 16
    usage_chunk_shape: str = "alternate"  # "empty_choices" (docs) | "empty_delta" (observed) | "alternate"
    keepalive_comments: bool = True  # ": OPENROUTER PROCESSING" lines in SSE
    ring_size: int = 20  # how many last request bodies /_fake/stats keeps
    credits_limit: float | None = None  # /key "limit"; None = unlimited
    chunk_interval_ms: float = 0.0  # streams: pause between two content chunks (a slow but steady answer)
    stall_ms: float = 0.0  # streams: one pause of this length mid-answer, after `stall_after_chunks` chunks
    stall_after_chunks: int = 1
    max_concurrency: int = 0  # hidden capacity: chat calls served at once, stream bodies included; 0 = none
    over_capacity: str = "reject"  # beyond: "reject" (OpenRouter 429, Ollama 503; no Retry-After) or "queue"
    batch_concurrency: int = 64  # Batch API (fake OpenAI-compatible): lines answered at once
    batch_start_delay_ms: float = 0.0  # Batch API: queueing before a batch starts
    batch_window_ms: float = 0.0  # Batch API: the completion window (0 = none); then the batch is "expired"

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]


def _coerce(name: str, value: Any) -> Any:
    """Coerce CLI/env strings to the field's type."""
    default = getattr(FakeConfig(), name)
    if not isinstance(value, str):
        return value
    if name == "script":
        return json.loads(value)
    if value.lower() in ("none", "null", ""):
        return None
    if isinstance(default, bool):
        return value.lower() in ("1", "true", "yes", "on")
    if isinstance(default, int) and not isinstance(default, bool):
        return int(value)
    if isinstance(default, float) or name == "retry_after_s" or name == "credits_limit":
        return float(value)
    return value


class FakeState:
    """Runtime state of one fake server; safe to poke from tests (single event loop serves requests)."""

    def __init__(self, config: FakeConfig | None = None, **overrides: Any) -> None:
        base = config or FakeConfig()
        self._initial = dataclasses.replace(base, **overrides)
        self.config = dataclasses.replace(self._initial, script=list(self._initial.script))
        self.active = 0  # chat calls holding a place of `max_concurrency` (not reset: they are real requests)
        self._queue: deque[asyncio.Future[None]] = deque()
        # what a server keeps besides this state (records, caches), cleared with it
        self.reset_hooks: list[Callable[[], None]] = []
        self.reset()

    # --- control ----------------------------------------------------------------------------------------
    def reset(self) -> None:
        for hook in getattr(self, "reset_hooks", ()):
            hook()
        self.config = dataclasses.replace(self._initial, script=list(self._initial.script))
        self.rng = random.Random(self.config.seed)
        self.chat_calls = 0
        self.requests = 0
        self.by_outcome: Counter[str] = Counter()
        self.by_path: Counter[str] = Counter()
        self.last_requests: deque[dict[str, Any]] = deque(maxlen=self.config.ring_size)
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost_usd = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self.handler_calls = 0
        self.handler_s = 0.0
        self.max_active = 0
        self.max_queued = 0
        self.last_answer: str | None = None
        self.started_at = time.time()

    def configure(self, **changes: Any) -> None:
        unknown = set(changes) - set(FakeConfig.field_names())
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}; known: {FakeConfig.field_names()}")
        coerced = {k: _coerce(k, v) for k, v in changes.items()}
        if "script" in coerced:
            coerced["script"] = list(coerced["script"] or [])
        self.config = dataclasses.replace(self.config, **coerced)
        if "seed" in coerced:
            self.rng = random.Random(self.config.seed)
        if "ring_size" in coerced:
            self.last_requests = deque(self.last_requests, maxlen=self.config.ring_size)

    def stats(self) -> dict[str, Any]:
        return {
            "calls": self.chat_calls,
            "requests": self.requests,
            "by_outcome": dict(self.by_outcome),
            "by_path": dict(self.by_path),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 10),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "handler_calls": self.handler_calls,
            "handler_ms_total": round(self.handler_s * 1000.0, 3),
            "active": self.active,
            "max_active": self.max_active,
            "queued": len(self._queue),
            "max_queued": self.max_queued,
            "script_remaining": len(self.config.script),
            "last_requests": list(self.last_requests),
            "config": dataclasses.asdict(self.config),
        }

    # --- per-request helpers ----------------------------------------------------------------------------
    def note_request(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> None:
        self.requests += 1
        self.by_path[path] += 1
        if body is not None:
            entry = {"path": path, "body": body, "ts": time.time()}
            if headers:
                entry["headers"] = headers
            self.last_requests.append(entry)

    def next_outcome(self) -> dict[str, Any]:
        """Decide what this chat call does; the call number is fixed now, before any latency sleep, so
        concurrent calls synthesise different answers."""
        self.chat_calls += 1
        outcome = dict(self._decide())
        outcome.setdefault("call", self.chat_calls)
        return outcome

    def _decide(self) -> dict[str, Any]:
        """script → down → fail_first_n → rates → ok."""
        cfg = self.config
        if cfg.script:
            return normalise_outcome(cfg.script.pop(0))
        if cfg.down:
            return {"kind": "status", "status": 503}
        if self.chat_calls <= cfg.fail_first_n:
            return {"kind": "status", "status": cfg.fail_first_status}
        rng = self.rng
        if cfg.rate_429 and rng.random() < cfg.rate_429:
            return {"kind": "status", "status": 429}
        if cfg.rate_5xx and rng.random() < cfg.rate_5xx:
            return {"kind": "status", "status": cfg.status_5xx}
        if cfg.rate_402 and rng.random() < cfg.rate_402:
            return {"kind": "status", "status": 402}
        if cfg.rate_midstream_error and rng.random() < cfg.rate_midstream_error:
            return {"kind": "midstream_error"}
        if cfg.rate_invalid_json and rng.random() < cfg.rate_invalid_json:
            return {"kind": "invalid_json"}
        if cfg.rate_code_fence and rng.random() < cfg.rate_code_fence:
            return {"kind": "code_fence"}
        if cfg.rate_duplicate and rng.random() < cfg.rate_duplicate:
            return {"kind": "duplicate"}
        return {"kind": "ok"}

    def delay_s(self, outcome: dict[str, Any]) -> float:
        cfg = self.config
        ms = cfg.latency_ms + (self.rng.uniform(0, cfg.jitter_ms) if cfg.jitter_ms else 0.0)
        ms += float(outcome.get("delay_ms") or 0)
        return ms / 1000.0

    async def sleep(self, outcome: dict[str, Any]) -> None:
        d = self.delay_s(outcome)
        if d > 0:
            await asyncio.sleep(d)

    def enter(self) -> float:
        """A chat call starts; returns its start time for :meth:`leave`."""
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return time.perf_counter()

    def leave(self, started: float | None = None) -> None:
        """A chat handler returns (for a stream: before its body is sent); adds its time to the stats."""
        self.in_flight -= 1
        if started is not None:
            self.handler_calls += 1
            self.handler_s += time.perf_counter() - started

    async def timed(self, handler: Callable[[Any], Awaitable[Any]], request: Any) -> Any:
        """Run a chat handler between :meth:`enter` and :meth:`leave`."""
        started = self.enter()
        try:
            return await handler(request)
        finally:
            self.leave(started)

    # --- hidden capacity (max_concurrency) ---------------------------------------------------------------
    def _take_place(self) -> None:
        self.active += 1
        self.max_active = max(self.max_active, self.active)

    def _has_room(self) -> bool:
        cap = self.config.max_concurrency
        return cap <= 0 or self.active < cap

    async def admit(self, gone: Callable[[], Awaitable[bool]]) -> str:
        """A chat call asks for a place: ``"ok"`` (hold it until :meth:`release_place`), ``"reject"`` (over
        capacity), or ``"gone"`` (queued, and the client hung up meanwhile, like a real server's queue)."""
        if not self._queue and self._has_room():
            self._take_place()
            return "ok"
        if self.config.over_capacity != "queue":
            return "reject"
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(fut)
        self.max_queued = max(self.max_queued, len(self._queue))
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(fut), 0.05)
                return "ok"
            except TimeoutError:
                if not await gone():
                    continue
            if fut.done():  # granted just as the client left
                self.release_place()
            else:
                fut.cancel()
                with contextlib.suppress(ValueError):
                    self._queue.remove(fut)
            return "gone"

    def release_place(self) -> None:
        self.active -= 1
        while self._queue and self._has_room():
            fut = self._queue.popleft()
            if not fut.done():
                self._take_place()
                fut.set_result(None)

    def reject_over_capacity(self, path: str, status: int) -> None:
        """Count a chat call refused for capacity (a chat call like any other in ``calls``)."""
        self.chat_calls += 1
        self.note_request(path)
        self.account(str(status))

    def stream_pause_s(self, sent: int) -> float:
        """Pause before the next content chunk of a stream, ``sent`` chunks having gone out."""
        cfg = self.config
        pause = cfg.chunk_interval_ms if sent > 0 else 0.0
        if cfg.stall_ms and sent == cfg.stall_after_chunks:
            pause += cfg.stall_ms
        return pause / 1000.0

    def account(
        self, outcome: str, prompt_tokens: int = 0, completion_tokens: int = 0, cost: float = 0.0
    ) -> None:
        self.by_outcome[outcome] += 1
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.cost_usd += cost


def normalise_outcome(entry: Any) -> dict[str, Any]:
    if isinstance(entry, int) or (isinstance(entry, str) and entry.isdigit()):
        return {"kind": "status", "status": int(entry)}
    if isinstance(entry, str):
        kind = entry
        out: dict[str, Any] = {"kind": kind}
    elif isinstance(entry, dict):
        out = dict(entry)
        if "kind" not in out:
            out["kind"] = "status" if "status" in out else "ok"
        if str(out["kind"]).isdigit():
            out = {**out, "kind": "status", "status": int(out["kind"])}
    else:
        raise ValueError(f"bad script entry {entry!r}")
    if out["kind"] not in KINDS:
        raise ValueError(f"unknown script kind {out['kind']!r}; known: {sorted(KINDS)} or an HTTP status")
    return out


class FakeDisconnect(Exception):
    """Raised inside a streaming body to make uvicorn drop the connection."""


class _DropFakeDisconnect(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, FakeDisconnect):
                return False
            exc = (
                exc.__cause__
                or exc.__context__
                or (exc.exceptions[0] if isinstance(exc, BaseExceptionGroup) else None)
            )
        return True


logging.getLogger("uvicorn.error").addFilter(_DropFakeDisconnect())


async def drop_connection(content: str) -> AsyncIterator[bytes]:
    yield content[: len(content) // 2].encode()
    raise FakeDisconnect


class HoldPlace(Response):
    """Releases the call's place of ``max_concurrency`` once the response is sent (a stream's body included, also
    when the client hangs up or the body fails)."""

    def __init__(self, inner: Response, state: FakeState) -> None:  # no super().__init__: it only delegates
        self.inner = inner
        self.state = state
        self.status_code = inner.status_code
        self.background = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.inner(scope, receive, send)
        finally:
            self.state.release_place()


async def with_place(
    state: FakeState,
    request: Request,
    handle: Callable[[Request], Awaitable[Response]],
    refuse: Callable[[], Response],
    path: str,
    status: int,
) -> Response:
    """Serve one chat call within the hidden capacity: refused (``status``), queued, or served while it holds a
    place. The body is read first, so a queued call can notice its client hanging up."""
    await request.body()
    admitted = await state.admit(request.is_disconnected)
    if admitted == "reject":
        state.reject_over_capacity(path, status)
        return refuse()
    if admitted == "gone":
        return Response(status_code=499)
    try:
        response = await handle(request)
    except BaseException:
        state.release_place()
        raise
    return HoldPlace(response, state)


# --- answer synthesis ---------------------------------------------------------------------------------------
def estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def prose(state: FakeState, n_words: int = 0, call: int | None = None) -> str:
    rng = state.rng
    n = n_words or rng.randint(8, 24)
    words = [rng.choice(WORDS) for _ in range(n)]
    words[0] = words[0].capitalize()
    return " ".join(words) + f". (answer {call if call is not None else state.chat_calls})"


def synthesise(
    state: FakeState, schema: dict[str, Any] | None, json_mode: bool, outcome: dict[str, Any]
) -> tuple[str, str]:
    """Return (content, finish_reason) for a successful-status call, honouring content-level faults."""
    kind = outcome["kind"]
    call = int(outcome.get("call") or state.chat_calls)
    if kind == "duplicate" and state.last_answer is not None:
        return state.last_answer, "stop"
    if kind == "empty":
        return "", "stop"
    if kind == "free_text" or (schema is None and not json_mode):
        text = prose(state, call=call)
        if kind == "length":
            return text[: len(text) // 2], "length"
        state.last_answer = text
        return text, "stop"
    instance = (
        generate_instance(schema, seed=state.config.seed, counter=call)
        if schema is not None
        else {"result": prose(state, 6, call=call)}
    )
    text = json.dumps(instance, ensure_ascii=False)
    finish = "stop"
    if kind == "invalid_json":
        text = broken_variant(instance, schema or {}, state.rng)
    elif kind == "length":
        text, finish = text[: max(1, len(text) * 2 // 3)], "length"
    elif kind == "code_fence":
        text = f"Sure! Here is the item you asked for:\n\n```json\n{json.dumps(instance, indent=2)}\n```\n\nLet me know if you need more."
    state.last_answer = text
    return text, finish


_MARKER_RE = re.compile(r"JSON Schema", re.IGNORECASE)


def schema_from_messages(messages: list[Any]) -> dict[str, Any] | None:
    """Find a JSON Schema described in the prompt (json_object mode): the first JSON object after 'JSON Schema'."""
    decoder = json.JSONDecoder()
    for msg in messages:
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, list):  # content parts
            content = "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            continue
        for m in _MARKER_RE.finditer(content):
            start = content.find("{", m.end())
            while start != -1:
                try:
                    obj, _ = decoder.raw_decode(content, start)
                except ValueError:
                    start = content.find("{", start + 1)
                    continue
                if isinstance(obj, dict) and ("type" in obj or "properties" in obj or "$defs" in obj):
                    return obj
                break
    return None


def prompt_tokens_of(messages: list[Any]) -> int:
    total = 3
    for msg in messages:
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, list):  # content parts (OpenRouter: cache_control breakpoints)
            content = "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
        total += 4 + (estimate_tokens(content) if isinstance(content, str) else 0)
    return total


# --- control routes -----------------------------------------------------------------------------------------
def control_routes(state: FakeState) -> list[Route]:
    async def config(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(dataclasses.asdict(state.config))
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("body must be a JSON object")
            if "script" in changes:
                changes["script"] = [normalise_outcome(e) for e in changes["script"] or []]
            state.configure(**changes)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(dataclasses.asdict(state.config))

    async def stats(_: Request) -> Response:
        return JSONResponse(state.stats())

    async def reset(_: Request) -> Response:
        state.reset()
        return JSONResponse({"ok": True})

    return [
        Route("/_fake/config", config, methods=["GET", "POST"]),
        Route("/_fake/stats", stats, methods=["GET"]),
        Route("/_fake/reset", reset, methods=["POST"]),
    ]


# --- CLI ----------------------------------------------------------------------------------------------------
def config_from_env_and_args(
    argv: list[str] | None, prog: str, default_port: int
) -> tuple[str, int, FakeConfig]:
    """``FAKE_<FIELD>`` env vars, then ``--<field>`` flags (``--latency-ms 200``), then ``--config '<json>'``."""
    parser = argparse.ArgumentParser(prog=prog, description="Protocol-faithful fake LLM provider")
    parser.add_argument("--host", default=os.environ.get("FAKE_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("FAKE_PORT", default_port)))
    parser.add_argument("--config", help="JSON object merged into the config last")
    for name in FakeConfig.field_names():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None)
    args = parser.parse_args(argv)
    values: dict[str, Any] = {}
    for name in FakeConfig.field_names():
        env = os.environ.get(f"FAKE_{name.upper()}")
        if env is not None:
            values[name] = _coerce(name, env)
        cli = getattr(args, name)
        if cli is not None:
            values[name] = _coerce(name, cli)
    if args.config:
        values.update(json.loads(args.config))
    if "script" in values:
        values["script"] = [normalise_outcome(e) for e in values["script"]]
    return args.host, args.port, FakeConfig(**values)


def serve(
    create_app: Callable[[FakeState], Any], argv: list[str] | None, prog: str, default_port: int
) -> None:
    import uvicorn

    host, port, cfg = config_from_env_and_args(argv, prog, default_port)
    app = create_app(FakeState(cfg))
    print(
        f"{prog} listening on http://{host}:{port} config={json.dumps(dataclasses.asdict(cfg))}", flush=True
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
