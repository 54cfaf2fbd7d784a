"""Any server speaking the OpenAI API (``/chat/completions``, ``/models``): vLLM, llama.cpp server, LM Studio,
Ollama's ``/v1``, OpenAI, Together, Groq, Fireworks, DeepInfra…

Chat goes through the official ``openai`` SDK exactly like the OpenRouter adapter (the SDK client's own ``post``
with ``build_request_body()`` as the body, ``max_retries=0``, the aiohttp transport, the same refused-vs-timeout
and status → taxonomy mapping; the helpers are OpenRouter's). What differs is the wire dialect: no OpenRouter
extensions in the body (``usage.include``, ``provider.require_parameters`` — strict servers refuse unknown
fields), the structured-output mode comes from settings (per model), and ``cost_usd`` is computed from configured
prices since these servers report none. See the package README, "OpenAI-compatible servers".
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

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
    PER_MILLION,
    ChatRequest,
    ChatResult,
    ConnectionTestResult,
    ModelPricing,
    ModelRecord,
    add_schema_instruction,
)
from llmts_providers.settings import ProviderSettings, StructuredOutputMode, TokenPrice

__all__ = ["PROVIDER", "OpenAICompatibleProvider"]

PROVIDER = "openai-compatible"
# The SDK refuses to start without a key; with none configured no Authorization header is sent (see _options).
_NO_KEY = "no-key"
_MODELS_CACHE_TTL_S = 60.0
_NOT_CONFIGURED = "OPENAI_COMPATIBLE_BASE_URL is not set"


class OpenAICompatibleProvider:
    """OpenAI-compatible adapter. See the package README for the request mapping."""

    name = PROVIDER

    def __init__(
        self,
        *,
        base_url: str | None,
        api_key: str | SecretStr | None = None,
        structured_output: StructuredOutputMode = "json_schema",
        structured_output_models: Mapping[str, StructuredOutputMode] | None = None,
        prices: Mapping[str, TokenPrice] | None = None,
        max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens",
        timeout_s: float = 120.0,
        connect_timeout_s: float = 5.0,
        http_backend: str = "aiohttp",
        first_token_timeout_s: float = 120.0,
        idle_timeout_s: float = 30.0,
        stream_timeout_s: float | None = None,
        batch_price_factor: float = 0.5,
    ) -> None:
        self.base_url = base_url.rstrip("/") if base_url else None
        self.batch_price_factor = batch_price_factor
        self._deadlines = Deadlines(
            PROVIDER, timeout_s, first_token_timeout_s, idle_timeout_s, stream_timeout_s
        )
        # a stream is watched by its own deadlines (CallDeadline), not by the transport's per-read timeout
        self._stream_timeout = openai.Timeout(None, connect=connect_timeout_s)
        self._api_key = secret_value(api_key)
        self._mode: StructuredOutputMode = structured_output
        self._modes = dict(structured_output_models or {})
        self._prices = dict(prices or {})
        self._max_tokens_param = max_tokens_param
        self._sdk: openai.AsyncOpenAI | None = None
        self._http: httpx.AsyncClient | None = None
        self._models_cache: tuple[float, list[ModelRecord]] | None = None
        if self.base_url is None:  # not configured: no client, so nothing can be sent anywhere by default
            return
        self._sdk = openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=self._api_key or _NO_KEY,
            max_retries=0,
            timeout=openai.Timeout(timeout_s, connect=connect_timeout_s),
            http_client=sdk_http_client(http_backend),
        )
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
        )

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> OpenAICompatibleProvider:
        return cls(
            base_url=settings.openai_compatible_base_url,
            api_key=settings.openai_compatible_api_key,
            structured_output=settings.openai_compatible_structured_output,
            structured_output_models=settings.openai_compatible_structured_output_models,
            prices=settings.openai_compatible_prices,
            max_tokens_param=settings.openai_compatible_max_tokens_param,
            timeout_s=settings.provider_timeout_seconds,
            connect_timeout_s=settings.provider_connect_timeout_seconds,
            first_token_timeout_s=settings.provider_first_token_timeout_seconds,
            idle_timeout_s=settings.provider_idle_timeout_seconds,
            stream_timeout_s=settings.provider_stream_timeout_seconds,
            batch_price_factor=settings.openai_compatible_batch_price_factor,
        )

    @property
    def has_key(self) -> bool:
        return self._api_key is not None

    def __repr__(self) -> str:  # never shows the key
        return (
            f"OpenAICompatibleProvider(base_url={self.base_url!r}, key={'set' if self._api_key else 'unset'})"
        )

    # --- request body ---------------------------------------------------------------------------------
    def structured_output_mode(
        self, model: str, supports_structured_output: bool = True
    ) -> StructuredOutputMode:
        """The model's mode (``OPENAI_COMPATIBLE_STRUCTURED_OUTPUT_MODELS``, else the global one); a request that
        says the model has no structured output gets ``json_object`` instead of ``json_schema``."""
        mode = self._modes.get(model, self._mode)
        if mode == "json_schema" and not supports_structured_output:
            return "json_object"
        return mode

    def build_request_body(self, request: ChatRequest) -> dict[str, Any]:
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        body: dict[str, Any] = {"model": request.model, "messages": messages}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body[self._max_tokens_param] = request.max_tokens
        if request.seed is not None:
            body["seed"] = request.seed
        if request.json_schema is not None:
            mode = self.structured_output_mode(request.model, request.supports_structured_output)
            if mode == "json_schema":
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {
                        "name": request.schema_name,
                        "strict": request.strict,
                        "schema": request.json_schema,
                    },
                }
            else:
                if mode == "json_object":
                    body["response_format"] = {"type": "json_object"}
                add_schema_instruction(messages, request.json_schema)
        body["stream"] = request.stream
        if request.stream:
            body["stream_options"] = {"include_usage": True}
        body.update(request.extra)
        return body

    # --- chat -----------------------------------------------------------------------------------------
    def _client(self) -> openai.AsyncOpenAI:
        if self._sdk is None:
            raise ProviderUnavailable(_NOT_CONFIGURED, PROVIDER, retryable=False)
        return self._sdk

    def sdk_client(self) -> openai.AsyncOpenAI:
        """The configured SDK client (the Batch API client uses its files and batches resources)."""
        return self._client()

    async def chat(self, request: ChatRequest) -> ChatResult:
        return await traced_chat(PROVIDER, request, self._chat)

    async def _chat(self, request: ChatRequest) -> ChatResult:
        sdk = self._client()
        body = self.build_request_body(request)
        stream = bool(body.get("stream"))
        options = self._options(self._stream_timeout if stream else request.timeout_s)
        async with self._deadlines.for_call(request, stream=stream) as deadline:
            return await self._chat_mapped(sdk, body, options, deadline)

    async def _chat_mapped(
        self, sdk: openai.AsyncOpenAI, body: dict[str, Any], options: RequestOptions, deadline: CallDeadline
    ) -> ChatResult:
        """The call, with the SDK's errors mapped onto the taxonomy."""
        started = time.perf_counter()
        partial: list[str] = []
        with sdk_errors(PROVIDER, partial):
            if body.get("stream"):
                return await self._chat_stream(sdk, body, options, started, partial, deadline)
            return await self._chat_once(sdk, body, options, started)

    def _options(self, timeout_s: float | openai.Timeout | None) -> RequestOptions:
        # what ``chat.completions.create`` passes (bearer auth, optional per-request timeout); without a key the
        # placeholder the SDK insists on is not sent
        options: RequestOptions = {"security": {"bearer_auth": True}}
        if timeout_s is not None:
            options["timeout"] = timeout_s
        if self._api_key is None:
            options["headers"] = {"Authorization": openai.Omit()}
        return options

    async def _chat_once(
        self, sdk: openai.AsyncOpenAI, body: dict[str, Any], options: RequestOptions, started: float
    ) -> ChatResult:
        try:  # ``cast_to=object``: the decoded JSON as is (cheaper than building a ChatCompletion)
            resp: Any = await sdk.post("/chat/completions", body=body, cast_to=object, options=options)
        except ValueError as exc:  # a 200 whose body is not JSON
            raise ProviderUnavailable(f"invalid JSON in the response: {exc}", PROVIDER) from exc
        return self.parse_completion(resp, body["model"], started)

    def parse_completion(
        self, resp: Any, requested: str, started: float, *, price_factor: float = 1.0
    ) -> ChatResult:
        """A non-streamed ``chat.completion`` body → :class:`ChatResult` (also a batch output line's body:
        ``price_factor`` is then the batch discount); a 200 carrying an error raises :class:`MidStreamError`."""
        if not isinstance(resp, Mapping):
            raise ProviderUnavailable("unexpected response shape (not a JSON object)", PROVIDER, raw=resp)
        raw_choices = resp.get("choices")
        choices = [c for c in raw_choices if isinstance(c, Mapping)] if isinstance(raw_choices, list) else []
        if resp.get("error"):  # HTTP 200 carrying an error
            raise MidStreamError(
                error_message({"error": resp["error"]}, "error in 200 response"), PROVIDER, raw=resp["error"]
            )
        text, finish = "", None
        if choices:
            message = choices[0].get("message")
            content = message.get("content") if isinstance(message, Mapping) else None
            text = content if isinstance(content, str) else ""
            finish = nonempty_str(choices[0].get("finish_reason"))
        usage = resp.get("usage")
        result = self._result(
            text=text,
            finish=finish,
            usage=usage if isinstance(usage, Mapping) else None,
            model=nonempty_str(resp.get("model")) or requested,
            requested=requested,
            generation_id=nonempty_str(resp.get("id")),
            started=started,
        )
        if price_factor != 1.0:
            result = result.model_copy(update={"cost_usd": result.cost_usd * price_factor})
        return result

    async def _chat_stream(
        self,
        sdk: openai.AsyncOpenAI,
        body: dict[str, Any],
        options: RequestOptions,
        started: float,
        parts: list[str],
        deadline: CallDeadline,
    ) -> ChatResult:
        stream = await sdk.post(
            "/chat/completions",
            body=body,
            cast_to=ChatCompletion,
            options=options,
            stream=True,
            stream_cls=openai.AsyncStream[ChatCompletionChunk],
        )
        finish: str | None = None
        usage: Mapping[str, Any] | None = None
        gen_id: str | None = None
        model: str | None = None
        try:
            # the usage chunk comes last with ``choices: []`` (OpenAI, vLLM, Ollama) or, on some servers, with
            # one choice and an empty delta; a server that ignores ``stream_options`` sends none
            async for chunk in stream:
                deadline.chunk()
                gen_id = gen_id or chunk.id
                model = model or chunk.model
                for choice in chunk.choices or []:
                    if choice.delta is not None and choice.delta.content:
                        parts.append(choice.delta.content)
                    if choice.finish_reason:
                        finish = choice.finish_reason
                if chunk.usage is not None:
                    usage = chunk.usage.model_dump()
        finally:
            await stream.close()
        if finish == "error":
            raise MidStreamError(
                "stream finished with finish_reason=error", PROVIDER, partial_text="".join(parts)
            )
        return self._result(
            text="".join(parts),
            finish=finish,
            usage=usage,
            model=model or body["model"],
            requested=body["model"],
            generation_id=gen_id,
            started=started,
            first_token_ms=deadline.first_token_ms,
        )

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> Decimal | None:
        """USD of one call from ``OPENAI_COMPATIBLE_PRICES`` (per 1M tokens); ``None`` when the model has no price."""
        price = self._prices.get(model)
        if price is None:
            return None
        return (prompt_tokens * price.prompt + completion_tokens * price.completion) / PER_MILLION

    def _result(
        self,
        *,
        text: str,
        finish: str | None,
        usage: Mapping[str, Any] | None,
        model: str,
        requested: str,
        generation_id: str | None,
        started: float,
        first_token_ms: float | None = None,
    ) -> ChatResult:
        prompt_tokens = completion_tokens = 0
        if usage is not None:
            prompt_tokens = _count(usage.get("prompt_tokens"))
            completion_tokens = _count(usage.get("completion_tokens"))
        # priced by the id that was asked for (the one in settings), else by the id the server answered with
        cost = self.cost(requested, prompt_tokens, completion_tokens)
        if cost is None:
            cost = self.cost(model, prompt_tokens, completion_tokens)
        known = cost is not None and usage is not None
        cached, _write = cache_tokens(usage)
        return ChatResult(
            text=text,
            finish_reason=finish,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cached_tokens=cached,
            cost_usd=float(cost) if known and cost is not None else 0.0,
            cost_reported=known,
            model=model,
            provider=PROVIDER,
            generation_id=generation_id,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            first_token_ms=first_token_ms,
        )

    # --- catalog --------------------------------------------------------------------------------------
    async def _get_json(self, path: str) -> Any:
        if self._http is None:
            raise ProviderUnavailable(_NOT_CONFIGURED, PROVIDER, retryable=False)
        return await get_json(self._http, PROVIDER, path)

    def _record(self, raw: Mapping[str, Any]) -> ModelRecord:
        model_id = str(raw["id"])
        price = self._prices.get(model_id)
        pricing = (
            ModelPricing()
            if price is None
            else ModelPricing(prompt=price.prompt, completion=price.completion)
        )
        mode = self.structured_output_mode(model_id)
        params = ["max_tokens", "temperature", "seed", "stream"]
        if mode != "prompt":
            params.append("response_format")
        if mode == "json_schema":
            params.append("structured_outputs")
        return ModelRecord.from_openai_compatible(
            raw, pricing=pricing, structured_output=mode == "json_schema", supported_parameters=params
        )

    async def list_models(self) -> list[ModelRecord]:
        """``GET /models``: ``{"object": "list", "data": [...]}`` (a bare list, as Together sends, works too)."""
        payload = await self._get_json("models")
        items = payload.get("data") if isinstance(payload, Mapping) else payload
        if not isinstance(items, list):
            raise BadRequest("unexpected /models response shape", PROVIDER, raw=payload)
        records = [self._record(m) for m in items if isinstance(m, Mapping) and m.get("id")]
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
        raise ModelNotFound(f"model {model_id!r} not served at {self.base_url}", PROVIDER, status_code=404)

    # --- connection test ------------------------------------------------------------------------------
    async def test_connection(self) -> ConnectionTestResult:
        """``GET /models``: reachable and (with a key) the key accepted; a 401/403 means a bad key."""
        if self.base_url is None:
            return ConnectionTestResult(provider=PROVIDER, reachable=False, error=_NOT_CONFIGURED)
        started = time.perf_counter()
        try:
            await self._get_json("models")
        except ProviderError as exc:
            latency = (time.perf_counter() - started) * 1000.0
            if isinstance(exc, ProviderUnavailable) and exc.status_code is None:
                return ConnectionTestResult(provider=PROVIDER, reachable=False, error=str(exc))
            key_valid = False if exc.status_code in (401, 403) else None
            error = str(exc) if self._api_key or key_valid is None else f"no API key configured; {exc}"
            return ConnectionTestResult(
                provider=PROVIDER, reachable=True, latency_ms=latency, key_valid=key_valid, error=error
            )
        latency = (time.perf_counter() - started) * 1000.0
        return ConnectionTestResult(
            provider=PROVIDER,
            reachable=True,
            latency_ms=latency,
            key_valid=True if self._api_key else None,
        )

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        if self._sdk is not None:
            await self._sdk.close()


def _count(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else 0
