"""OpenRouter through the official ``openai`` SDK (chat) and httpx (``/models``, ``/key``).

Wire format: providers-api.md part A. The SDK is built with ``max_retries=0``: retrying is the caller's
decision, made from the error taxonomy (``retryable`` / ``retry_after``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx
import openai
from openai._types import RequestOptions  # the TypedDict of the SDK's own request options
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import SecretStr

from llmts_providers._openai_wire import (
    cache_tokens,
    get_json,
    nonempty_str,
    sdk_errors,
    sdk_http_client,
    secret_value,
)
from llmts_providers._tracing import traced_chat
from llmts_providers.deadlines import CallDeadline, Deadlines
from llmts_providers.errors import (
    BadRequest,
    MidStreamError,
    ModelNotFound,
    ProviderError,
    ProviderUnavailable,
    error_message,
)
from llmts_providers.models import (
    ChatRequest,
    ChatResult,
    ConnectionTestResult,
    GenerationStats,
    ModelRecord,
    add_schema_instruction,
)
from llmts_providers.settings import ProviderSettings

__all__ = ["OpenRouterProvider"]

PROVIDER = "openrouter"
# The SDK refuses to start without a key; OpenRouter then answers 401, which maps to AuthFailed.
_NO_KEY = "sk-or-missing-key"
_MODELS_CACHE_TTL_S = 60.0


class _Usage:
    """``usage`` of a JSON response with the attribute names of the SDK's ``CompletionUsage``."""

    __slots__ = ("completion_tokens", "model_extra", "prompt_tokens", "prompt_tokens_details")

    def __init__(
        self, prompt_tokens: Any, completion_tokens: Any, model_extra: dict[str, Any], details: Any = None
    ) -> None:
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.model_extra = model_extra
        self.prompt_tokens_details = details

    @classmethod
    def of_mapping(cls, usage: Mapping[str, Any]) -> _Usage:
        return cls(
            usage.get("prompt_tokens"),
            usage.get("completion_tokens"),
            {"cost": usage.get("cost")},
            usage.get("prompt_tokens_details"),
        )


# Model families whose prompt cache needs an explicit ``cache_control`` breakpoint through OpenRouter (its prompt
# caching guide); the others (OpenAI, DeepSeek, Grok, Moonshot, Groq…) cache long prefixes automatically.
_EXPLICIT_CACHE_PREFIXES = ("anthropic/", "google/gemini")


def mark_cache_breakpoint(messages: list[dict[str, Any]], model: str) -> None:
    """Put a ``cache_control`` breakpoint at the end of the system message (instructions, schema, examples: the
    part every item of a job shares) for the models that need one; the per-item user message follows it."""
    if not model.startswith(_EXPLICIT_CACHE_PREFIXES):
        return
    for message in messages:
        if message["role"] == "system" and isinstance(message["content"], str) and message["content"]:
            message["content"] = [
                {"type": "text", "text": message["content"], "cache_control": {"type": "ephemeral"}}
            ]
            return


class OpenRouterProvider:
    """OpenRouter adapter. See the package README for the request mapping."""

    name = PROVIDER

    def __init__(
        self,
        *,
        base_url: str = "https://openrouter.ai/api/v1",
        api_key: str | SecretStr | None = None,
        app_url: str | None = None,
        app_title: str | None = None,
        timeout_s: float = 120.0,
        connect_timeout_s: float = 5.0,
        http_backend: str = "aiohttp",
        first_token_timeout_s: float = 120.0,
        idle_timeout_s: float = 30.0,
        stream_timeout_s: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = secret_value(api_key)
        headers: dict[str, str] = {}
        if app_url:
            headers["HTTP-Referer"] = app_url
        if app_title:
            headers["X-OpenRouter-Title"] = app_title
            headers["X-Title"] = app_title  # backwards-compatible name
        self._deadlines = Deadlines(
            PROVIDER, timeout_s, first_token_timeout_s, idle_timeout_s, stream_timeout_s
        )
        # a stream is watched by its own deadlines (CallDeadline), not by the transport's per-read timeout
        self._stream_timeout = httpx.Timeout(None, connect=connect_timeout_s)
        self._sdk = openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=self._api_key or _NO_KEY,
            max_retries=0,
            timeout=openai.Timeout(timeout_s, connect=connect_timeout_s),
            default_headers=headers or None,
            http_client=sdk_http_client(http_backend),
        )
        http_headers = dict(headers)
        if self._api_key:
            http_headers["Authorization"] = f"Bearer {self._api_key}"
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers=http_headers,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
        )
        self._models_cache: tuple[float, list[ModelRecord]] | None = None

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> OpenRouterProvider:
        return cls(
            base_url=settings.openrouter_base_url,
            api_key=settings.openrouter_api_key,
            app_url=settings.openrouter_app_url,
            app_title=settings.openrouter_app_title,
            timeout_s=settings.provider_timeout_seconds,
            connect_timeout_s=settings.provider_connect_timeout_seconds,
            http_backend=settings.openrouter_http_backend,
            first_token_timeout_s=settings.provider_first_token_timeout_seconds,
            idle_timeout_s=settings.provider_idle_timeout_seconds,
            stream_timeout_s=settings.provider_stream_timeout_seconds,
        )

    @property
    def has_key(self) -> bool:
        return self._api_key is not None

    def __repr__(self) -> str:  # never shows the key
        return f"OpenRouterProvider(base_url={self.base_url!r}, key={'set' if self._api_key else 'unset'})"

    # --- request body ---------------------------------------------------------------------------------
    def build_request_body(self, request: ChatRequest) -> dict[str, Any]:
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        body: dict[str, Any] = {"model": request.model, "messages": messages}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.seed is not None:
            body["seed"] = request.seed
        if request.json_schema is not None:
            if request.supports_structured_output:
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {
                        "name": request.schema_name,
                        "strict": request.strict,
                        "schema": request.json_schema,
                    },
                }
                # route only to endpoints that honour response_format (providers-api.md A2)
                body["provider"] = {"require_parameters": True}
            else:
                body["response_format"] = {"type": "json_object"}
                add_schema_instruction(messages, request.json_schema)
        if request.cache_prompt:
            mark_cache_breakpoint(messages, request.model)
        body["stream"] = request.stream
        if request.stream:
            body["stream_options"] = {"include_usage": True}
        # deprecated no-op today, required by older deployments to get usage.cost (providers-api.md A2)
        body["usage"] = {"include": True}
        for key, value in request.extra.items():
            if key == "provider" and isinstance(value, Mapping) and isinstance(body.get("provider"), dict):
                body["provider"] = {**body["provider"], **value}
            else:
                body[key] = value
        return body

    # --- chat -----------------------------------------------------------------------------------------
    async def chat(self, request: ChatRequest) -> ChatResult:
        return await traced_chat(PROVIDER, request, self._chat)

    async def _chat(self, request: ChatRequest) -> ChatResult:
        body = self.build_request_body(request)
        stream = bool(body.get("stream"))
        seen: list[str] = []  # the generation id, once a chunk named it
        try:
            async with self._deadlines.for_call(request, stream=stream) as deadline:
                return await self._chat_mapped(request, body, deadline, seen)
        except ProviderError as exc:  # a cut stream was billed: keep its id for the reconciliation
            if seen and exc.generation_id is None:
                exc.generation_id = seen[0]
            raise

    async def _chat_mapped(
        self, request: ChatRequest, body: dict[str, Any], deadline: CallDeadline, seen: list[str]
    ) -> ChatResult:
        """The call, with the SDK's errors mapped onto the taxonomy."""
        started = time.perf_counter()
        partial: list[str] = []
        with sdk_errors(PROVIDER, partial):
            if body.get("stream"):
                return await self._chat_stream(body, self._stream_timeout, started, partial, deadline, seen)
            timeout: Any = request.timeout_s if request.timeout_s is not None else openai.NOT_GIVEN
            return await self._chat_once(body, timeout, started)

    @staticmethod
    def _options(timeout_s: Any) -> RequestOptions:
        # what ``chat.completions.create`` passes (bearer auth, optional per-request timeout)
        options: RequestOptions = {"security": {"bearer_auth": True}}
        if timeout_s is not openai.NOT_GIVEN:
            options["timeout"] = timeout_s
        return options

    async def _chat_once(self, body: dict[str, Any], timeout_s: Any, started: float) -> ChatResult:
        # ``cast_to=object``: the SDK returns the decoded JSON as is (building the ChatCompletion model costs more
        # CPU than the rest of the call); status errors, timeouts and connection errors are the SDK's as usual.
        try:
            resp: Any = await self._sdk.post(
                "/chat/completions", body=body, cast_to=object, options=self._options(timeout_s)
            )
        except ValueError as exc:  # a 200 whose body is not JSON
            raise ProviderUnavailable(f"invalid JSON in the response: {exc}", PROVIDER) from exc
        if not isinstance(resp, Mapping):
            raise ProviderUnavailable("unexpected response shape (not a JSON object)", PROVIDER, raw=resp)
        raw_choices = resp.get("choices")
        choices = [c for c in raw_choices if isinstance(c, Mapping)] if isinstance(raw_choices, list) else []
        error = resp.get("error")
        if not error and choices:
            error = choices[0].get("error")
        if error:  # HTTP 200 carrying an error (providers-api.md A3)
            failed = MidStreamError(
                error_message({"error": error}, "error in 200 response"), PROVIDER, raw=error
            )
            failed.generation_id = nonempty_str(resp.get("id"))
            raise failed
        text, finish, native = "", None, None
        if choices:
            choice = choices[0]
            message = choice.get("message")
            content = message.get("content") if isinstance(message, Mapping) else None
            text = content if isinstance(content, str) else ""
            finish = choice.get("finish_reason")
            native = choice.get("native_finish_reason")
        usage = resp.get("usage")
        return self._result(
            text=text,
            finish=finish if isinstance(finish, str) else None,
            native=native,
            usage=_Usage.of_mapping(usage) if isinstance(usage, Mapping) else None,
            model=nonempty_str(resp.get("model")) or body["model"],
            generation_id=nonempty_str(resp.get("id")),
            upstream=resp.get("provider"),
            started=started,
        )

    async def _chat_stream(
        self,
        body: dict[str, Any],
        timeout_s: Any,
        started: float,
        parts: list[str],
        deadline: CallDeadline,
        seen: list[str],
    ) -> ChatResult:
        stream = await self._sdk.post(
            "/chat/completions",
            body=body,
            cast_to=ChatCompletion,
            options=self._options(timeout_s),
            stream=True,
            stream_cls=openai.AsyncStream[ChatCompletionChunk],
        )
        finish: str | None = None
        native: str | None = None
        usage: Any = None
        gen_id: str | None = None
        model: str | None = None
        upstream: str | None = None
        try:
            # The SDK skips ": OPENROUTER PROCESSING" comments and stops at [DONE]. The usage chunk comes either
            # with ``choices: []`` (docs) or with one choice and an empty delta (observed) — both handled here.
            async for chunk in stream:
                deadline.chunk()
                if gen_id is None and chunk.id:
                    gen_id = chunk.id
                    seen.append(gen_id)
                model = model or chunk.model
                extra = chunk.model_extra or {}
                upstream = upstream or extra.get("provider")
                for choice in chunk.choices or []:
                    delta = choice.delta
                    if delta is not None and delta.content:
                        parts.append(delta.content)
                    if choice.finish_reason:
                        finish = choice.finish_reason
                        native = (choice.model_extra or {}).get("native_finish_reason") or native
                if chunk.usage is not None:
                    usage = chunk.usage
        finally:
            await stream.close()
        if finish == "error":
            raise MidStreamError(
                "stream finished with finish_reason=error", PROVIDER, partial_text="".join(parts)
            )
        return self._result(
            text="".join(parts),
            finish=finish,
            native=native,
            usage=usage,
            model=model or body["model"],
            generation_id=gen_id,
            upstream=upstream,
            started=started,
            first_token_ms=deadline.first_token_ms,
        )

    @staticmethod
    def _result(
        *,
        text: str,
        finish: str | None,
        native: Any,
        usage: Any,
        model: str,
        generation_id: str | None,
        upstream: Any,
        started: float,
        first_token_ms: float | None = None,
    ) -> ChatResult:
        prompt_tokens = completion_tokens = 0
        cost: Any = None
        if usage is not None:
            prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
            completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
            cost = (getattr(usage, "model_extra", None) or {}).get("cost")
        cost_ok = isinstance(cost, int | float) and not isinstance(cost, bool)
        cached, cache_write = cache_tokens(usage)
        return ChatResult(
            text=text,
            finish_reason=finish,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cached_tokens=cached,
            cache_write_tokens=cache_write,
            cost_usd=float(cost) if cost_ok else 0.0,
            cost_reported=cost_ok,
            model=model,
            provider=PROVIDER,
            generation_id=generation_id,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            upstream_provider=upstream if isinstance(upstream, str) else None,
            native_finish_reason=native if isinstance(native, str) else None,
            first_token_ms=first_token_ms,
        )

    # --- catalog --------------------------------------------------------------------------------------
    async def _get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return await get_json(self._http, PROVIDER, path, params)

    async def generation_stats(self, generation_id: str) -> GenerationStats | None:
        """OpenRouter's own record of one generation (``GET /generation?id=``): its billed cost and native token
        counts, to reconcile with the response's ``usage``. None while it is not recorded yet (a 404 for a moment
        after the generation ends) — ask again later; other failures raise the taxonomy's errors."""
        try:
            payload = await self._get_json("generation", {"id": generation_id})
        except ModelNotFound:
            return None
        data = payload.get("data") if isinstance(payload, Mapping) else None
        if not isinstance(data, Mapping) or not isinstance(data.get("total_cost"), int | float):
            raise ProviderUnavailable(
                "unexpected /generation answer (no data.total_cost)", PROVIDER, raw=payload
            )

        def count(*keys: str) -> int:
            for key in keys:
                value = data.get(key)
                if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                    return value
            return 0

        def flag(key: str) -> bool | None:
            value = data.get(key)
            return value if isinstance(value, bool) else None

        discount = data.get("cache_discount")
        return GenerationStats(
            id=str(data.get("id") or generation_id),
            total_cost_usd=float(data["total_cost"]),
            prompt_tokens=count("native_tokens_prompt", "tokens_prompt"),
            completion_tokens=count("native_tokens_completion", "tokens_completion"),
            cached_tokens=count("native_tokens_cached"),
            cache_discount_usd=float(discount) if isinstance(discount, int | float) else None,
            model=nonempty_str(data.get("model")),
            upstream_provider=nonempty_str(data.get("provider_name")),
            streamed=flag("streamed"),
            cancelled=flag("cancelled"),
            finish_reason=nonempty_str(data.get("finish_reason")),
        )

    async def list_models(self) -> list[ModelRecord]:
        payload = await self._get_json("models")
        items = payload.get("data") if isinstance(payload, Mapping) else payload
        if not isinstance(items, list):
            raise BadRequest("unexpected /models response shape", PROVIDER, raw=payload)
        records = [ModelRecord.from_openrouter(m) for m in items if isinstance(m, Mapping) and m.get("id")]
        self._models_cache = (time.monotonic(), records)
        return records

    async def get_model(self, model_id: str) -> ModelRecord:
        cached = self._models_cache
        if cached is None or time.monotonic() - cached[0] > _MODELS_CACHE_TTL_S:
            records = await self.list_models()
        else:
            records = cached[1]
        for record in records:
            if record.id == model_id:
                return record
        raise ModelNotFound(f"model {model_id!r} not in the OpenRouter catalog", PROVIDER, status_code=404)

    # --- connection test ------------------------------------------------------------------------------
    async def test_connection(self) -> ConnectionTestResult:
        started = time.perf_counter()
        try:
            try:
                payload = await self._get_json("key")
            except ModelNotFound:  # 404: legacy deployments only serve /auth/key
                payload = await self._get_json("auth/key")
        except ProviderError as exc:
            latency = (time.perf_counter() - started) * 1000.0
            if isinstance(exc, ProviderUnavailable) and exc.status_code is None:
                return ConnectionTestResult(provider=PROVIDER, reachable=False, error=str(exc))
            key_valid = False if exc.status_code in (401, 403) else None
            error = str(exc) if self._api_key else f"no API key configured; {exc}"
            return ConnectionTestResult(
                provider=PROVIDER, reachable=True, latency_ms=latency, key_valid=key_valid, error=error
            )
        latency = (time.perf_counter() - started) * 1000.0
        data = payload.get("data") if isinstance(payload, Mapping) else None
        credits: dict[str, Any] | None = None
        if isinstance(data, Mapping):
            keep = (
                "label",
                "limit",
                "limit_remaining",
                "limit_reset",
                "usage",
                "usage_daily",
                "usage_monthly",
            )
            credits = {k: data.get(k) for k in keep if k in data}
            credits["is_free_tier"] = data.get("is_free_tier")
        return ConnectionTestResult(
            provider=PROVIDER, reachable=True, latency_ms=latency, key_valid=True, credits=credits
        )

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._sdk.close()
