"""A CLIENT span around every provider call, so a job's trace shows the LLM request (and its usage)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from llmts_providers.models import ChatRequest, ChatResult

_tracer = trace.get_tracer("llmts.providers")


async def traced_chat(
    provider: str, request: ChatRequest, call: Callable[[ChatRequest], Awaitable[ChatResult]]
) -> ChatResult:
    attributes: dict[str, str | bool] = {
        "gen_ai.system": provider,
        "gen_ai.request.model": request.model,
        "llmts.stream": request.stream,
    }
    with _tracer.start_as_current_span(
        f"chat {provider}", kind=SpanKind.CLIENT, attributes=attributes
    ) as span:
        try:
            result = await call(request)
        except Exception as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.set_attribute("error.type", type(exc).__name__)
            raise
        span.set_attribute("gen_ai.usage.input_tokens", result.prompt_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", result.completion_tokens)
        span.set_attribute("llmts.cost_usd", result.cost_usd)
        return result
