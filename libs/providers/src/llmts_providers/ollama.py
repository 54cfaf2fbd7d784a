"""Ollama native API over httpx: ``/api/tags``, ``/api/show``, ``/api/chat`` (JSON or NDJSON), ``/api/version``.

Wire format: providers-api.md part B. Local models cost nothing: ``cost_usd`` is always 0.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import SecretStr

from llmts_providers._tracing import traced_chat
from llmts_providers.deadlines import CallDeadline, Deadlines
from llmts_providers.errors import (
    MidStreamError,
    ModelNotFound,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    error_from_status,
)
from llmts_providers.models import ChatRequest, ChatResult, ConnectionTestResult, ModelRecord
from llmts_providers.settings import ProviderSettings

__all__ = ["OllamaProvider", "strip_ollama_prefix"]

PROVIDER = "ollama"
PREFIX = "ollama/"


def strip_ollama_prefix(model_id: str) -> str:
    return model_id[len(PREFIX) :] if model_id.startswith(PREFIX) else model_id


def _with_tag(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


class OllamaProvider:
    """Ollama adapter. Model ids are Ollama names (``llama3.2`` or ``llama3.2:latest``); ``ollama/`` is stripped."""

    name = PROVIDER

    def __init__(
        self,
        *,
        base_url: str = "http://127.0.0.1:11434",
        api_key: str | SecretStr | None = None,
        keep_alive: str | None = None,
        timeout_s: float = 120.0,
        connect_timeout_s: float = 5.0,
        first_token_timeout_s: float = 120.0,
        idle_timeout_s: float = 30.0,
        stream_timeout_s: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._deadlines = Deadlines(
            PROVIDER, timeout_s, first_token_timeout_s, idle_timeout_s, stream_timeout_s
        )
        # a stream is watched by its own deadlines (CallDeadline), not by httpx's per-read timeout
        self._stream_timeout = httpx.Timeout(None, connect=connect_timeout_s)
        headers: dict[str, str] = {}
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._keep_alive = keep_alive
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
        )

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> OllamaProvider:
        return cls(
            base_url=settings.ollama_base_url,
            api_key=settings.ollama_api_key,
            keep_alive=settings.ollama_keep_alive,
            timeout_s=settings.provider_timeout_seconds,
            connect_timeout_s=settings.provider_connect_timeout_seconds,
            first_token_timeout_s=settings.provider_first_token_timeout_seconds,
            idle_timeout_s=settings.provider_idle_timeout_seconds,
            stream_timeout_s=settings.provider_stream_timeout_seconds,
        )

    def __repr__(self) -> str:
        return f"OllamaProvider(base_url={self.base_url!r})"

    # --- request body ---------------------------------------------------------------------------------
    def build_request_body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": strip_ollama_prefix(request.model),
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": request.stream,  # Ollama defaults to true: always send it
        }
        options: dict[str, Any] = {}
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.max_tokens is not None:
            options["num_predict"] = request.max_tokens
        if request.seed is not None:
            options["seed"] = request.seed
        if options:
            body["options"] = options
        if request.json_schema is not None:
            body["format"] = request.json_schema
        if self._keep_alive:
            body["keep_alive"] = self._keep_alive
        for key, value in request.extra.items():
            if key == "options" and isinstance(value, Mapping):
                body["options"] = {**body.get("options", {}), **value}
            else:
                body[key] = value
        return body

    # --- HTTP helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _raise_for(resp: httpx.Response, body: Any) -> None:
        if resp.status_code >= 400:
            raise error_from_status(PROVIDER, resp.status_code, body, dict(resp.headers.items()))

    @staticmethod
    def _json_or_text(raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    async def _request(
        self, method: str, path: str, payload: Any = None, timeout_s: float | None = None
    ) -> Any:
        kwargs: dict[str, Any] = {}
        if timeout_s is not None:
            kwargs["timeout"] = timeout_s
        try:
            resp = await self._http.request(method, path, json=payload, **kwargs)
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(f"{method} /{path} timed out", PROVIDER) from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(f"{method} /{path} failed: {exc!r}", PROVIDER) from exc
        body = self._json_or_text(resp.content)
        self._raise_for(resp, body)
        if not isinstance(body, Mapping | list):
            raise ProviderUnavailable(
                f"{method} /{path}: invalid JSON", PROVIDER, status_code=resp.status_code
            )
        return body

    # --- chat -----------------------------------------------------------------------------------------
    async def chat(self, request: ChatRequest) -> ChatResult:
        return await traced_chat(PROVIDER, request, self._chat)

    async def _chat(self, request: ChatRequest) -> ChatResult:
        body = self.build_request_body(request)
        started = time.perf_counter()
        deadline = self._deadlines.for_call(request, stream=request.stream)
        if not request.stream:
            async with deadline:
                data = await self._request("POST", "api/chat", body, deadline.total_s)
            if not isinstance(data, Mapping):
                raise ProviderUnavailable("unexpected /api/chat response", PROVIDER, raw=data)
            if data.get("error"):
                raise MidStreamError(str(data["error"]), PROVIDER, raw=data)
            message = data.get("message") or {}
            return self._result(str(message.get("content") or ""), data, body["model"], started)
        async with deadline:
            return await self._chat_stream(body, deadline, started)

    async def _chat_stream(self, body: dict[str, Any], deadline: CallDeadline, started: float) -> ChatResult:
        parts: list[str] = []
        final: Mapping[str, Any] | None = None
        try:
            async with self._http.stream("POST", "api/chat", json=body, timeout=self._stream_timeout) as resp:
                if resp.status_code >= 400:
                    self._raise_for(resp, self._json_or_text(await resp.aread()))
                async for line in resp.aiter_lines():
                    if not line.strip():
                        continue
                    deadline.chunk()
                    try:
                        obj = json.loads(line)
                    except ValueError as exc:
                        raise MidStreamError(
                            f"invalid NDJSON line: {line[:200]!r}", PROVIDER, partial_text="".join(parts)
                        ) from exc
                    if not isinstance(obj, Mapping):
                        continue
                    if obj.get("error"):
                        raise MidStreamError(
                            str(obj["error"]), PROVIDER, raw=obj, partial_text="".join(parts)
                        )
                    content = (obj.get("message") or {}).get("content")
                    if content:
                        parts.append(str(content))
                    if obj.get("done"):
                        final = obj
                        break
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(f"POST /api/chat timed out ({type(exc).__name__})", PROVIDER) from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(f"POST /api/chat failed: {exc!r}", PROVIDER) from exc
        if final is None:
            raise MidStreamError("stream ended without a done object", PROVIDER, partial_text="".join(parts))
        return self._result("".join(parts), final, body["model"], started, deadline.first_token_ms)

    @staticmethod
    def _result(
        text: str, final: Mapping[str, Any], model: str, started: float, first_token_ms: float | None = None
    ) -> ChatResult:
        # metrics are Go omitempty: a zero count is absent, not 0
        return ChatResult(
            text=text,
            finish_reason=final.get("done_reason") or ("stop" if final.get("done") else None),
            prompt_tokens=int(final.get("prompt_eval_count") or 0),
            completion_tokens=int(final.get("eval_count") or 0),
            cost_usd=0.0,
            cost_reported=True,
            model=str(final.get("model") or model),
            provider=PROVIDER,
            generation_id=None,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            first_token_ms=first_token_ms,
        )

    # --- catalog --------------------------------------------------------------------------------------
    async def _tags(self) -> list[Mapping[str, Any]]:
        data = await self._request("GET", "api/tags")
        models = data.get("models") if isinstance(data, Mapping) else None
        return [m for m in (models or []) if isinstance(m, Mapping)]

    async def _show(self, name: str) -> Mapping[str, Any]:
        data = await self._request("POST", "api/show", {"model": name})
        if not isinstance(data, Mapping):
            raise ProviderUnavailable("unexpected /api/show response", PROVIDER, raw=data)
        return data

    async def list_models(self) -> list[ModelRecord]:
        """``/api/tags`` enriched with ``/api/show`` (context length, capabilities); show failures are tolerated."""
        tags = await self._tags()
        sem = asyncio.Semaphore(8)

        async def one(tag: Mapping[str, Any]) -> ModelRecord:
            async with sem:
                try:
                    show: Mapping[str, Any] | None = await self._show(
                        str(tag.get("model") or tag.get("name"))
                    )
                except ProviderError:
                    show = None
            return ModelRecord.from_ollama(tag, show)

        return list(await asyncio.gather(*(one(t) for t in tags)))

    async def get_model(self, model_id: str) -> ModelRecord:
        name = strip_ollama_prefix(model_id)
        wanted = {name, _with_tag(name)}
        for tag in await self._tags():
            if {str(tag.get("model")), str(tag.get("name"))} & wanted:
                return ModelRecord.from_ollama(
                    tag, await self._show(str(tag.get("model") or tag.get("name")))
                )
        raise ModelNotFound(f"model '{name}' not found", PROVIDER, status_code=404)

    # --- connection test ------------------------------------------------------------------------------
    async def test_connection(self) -> ConnectionTestResult:
        started = time.perf_counter()
        try:
            data = await self._request("GET", "api/version")
        except ProviderError as exc:
            unreachable = isinstance(exc, ProviderUnavailable) and exc.status_code is None
            return ConnectionTestResult(
                provider=PROVIDER,
                reachable=not unreachable,
                latency_ms=None if unreachable else (time.perf_counter() - started) * 1000.0,
                error=str(exc),
            )
        version = data.get("version") if isinstance(data, Mapping) else None
        return ConnectionTestResult(
            provider=PROVIDER,
            reachable=True,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            key_valid=None,
            version=str(version) if version is not None else None,
        )

    async def aclose(self) -> None:
        await self._http.aclose()
