from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests.fakes.fixtures import *  # noqa: F403  (session fake servers + per-test handles)
from tests.fakes.fixtures import OPENROUTER_TEST_KEY, FakeHandle
from tests.support import net

from llmts_providers import OllamaProvider, OpenRouterProvider


@pytest.fixture
async def openrouter(fake_openrouter: FakeHandle) -> AsyncIterator[OpenRouterProvider]:
    p = OpenRouterProvider(
        base_url=fake_openrouter.base_url,
        api_key=OPENROUTER_TEST_KEY,
        app_url="https://llmts.example",
        app_title="LLM Template System",
        timeout_s=10,
    )
    yield p
    await p.aclose()


@pytest.fixture
async def ollama(fake_ollama: FakeHandle) -> AsyncIterator[OllamaProvider]:
    p = OllamaProvider(base_url=fake_ollama.base_url, timeout_s=10)
    yield p
    await p.aclose()


@pytest.fixture
def unused_port_url() -> str:
    """A 127.0.0.1 URL nobody listens on (connection refused)."""
    return net.unused_port_url()
