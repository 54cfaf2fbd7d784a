"""Default per-provider call settings: the ``openai-compatible`` provider (vLLM, llama.cpp, LM Studio, hosted
APIs) is streamed like Ollama, so a server that queues calls above its slots is seen by its time to first token and
a long but progressing answer is never cut by the total deadline; its ceiling is listed under its own name."""

from __future__ import annotations

from llmts_generator.bootstrap import limiters, runner_config
from llmts_generator.settings import GeneratorSettings


def _defaults() -> GeneratorSettings:
    fields = GeneratorSettings.model_fields
    return GeneratorSettings(
        stream_providers=fields["stream_providers"].default,
        provider_concurrency=fields["provider_concurrency"].default,
        provider_concurrency_default=fields["provider_concurrency_default"].default,
    )


def test_openai_compatible_calls_are_streamed_by_default() -> None:
    streamed = runner_config(_defaults()).stream_providers
    assert {"ollama", "openai-compatible"} <= streamed
    assert "openrouter" not in streamed


def test_openai_compatible_ceiling_is_configured_under_its_name() -> None:
    settings = _defaults()
    assert settings.provider_limits()["openai-compatible"] == 32
    limiter_for = limiters(settings.model_copy(update={"provider_concurrency": "openai-compatible=3"}))
    assert limiter_for("openai-compatible").ceiling == 3
    assert limiter_for("openai-compatible") is limiter_for("openai-compatible")
