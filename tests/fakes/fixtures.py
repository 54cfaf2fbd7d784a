"""pytest fixtures for the fake providers. Import them into a conftest.py:

    from tests.fakes.fixtures import *  # noqa: F403

One server per session (starting uvicorn costs ~100 ms); the function-scoped fixtures reset its config and
stats before each test and hand out a :class:`FakeHandle`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes import ollama, openai_compat, openrouter
from tests.fakes.common import FakeState
from tests.fakes.server import RunningFake

__all__ = [
    "OPENROUTER_TEST_KEY",
    "FakeHandle",
    "fake_ollama",
    "fake_ollama_server",
    "fake_openai_compat",
    "fake_openai_compat_server",
    "fake_openrouter",
    "fake_openrouter_server",
]

OPENROUTER_TEST_KEY = "sk-or-v1-fake-test-key"


class FakeHandle:
    """A running fake: ``base_url`` is what goes into OPENROUTER_BASE_URL / OLLAMA_BASE_URL /
    OPENAI_COMPATIBLE_BASE_URL."""

    def __init__(self, running: RunningFake, state: FakeState, api_prefix: str = "") -> None:
        self.running = running
        self.state = state
        self.api_prefix = api_prefix

    @property
    def root_url(self) -> str:
        return self.running.base_url

    @property
    def base_url(self) -> str:
        return self.running.base_url + self.api_prefix

    def configure(self, **changes: Any) -> None:
        self.state.configure(**changes)

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def reset(self) -> None:
        self.state.reset()

    def stop(self) -> None:
        """Stop listening: requests now get connection refused. The session fixture restarts it."""
        self.running.stop()

    def ensure_running(self) -> None:
        self.running.start()


@pytest.fixture(scope="session")
def fake_openrouter_server() -> Iterator[FakeHandle]:
    state = FakeState(api_key=OPENROUTER_TEST_KEY)
    with RunningFake(openrouter.create_app(state)) as running:
        yield FakeHandle(running, state, "/api/v1")


@pytest.fixture
def fake_openrouter(fake_openrouter_server: FakeHandle) -> Iterator[FakeHandle]:
    fake_openrouter_server.ensure_running()
    fake_openrouter_server.reset()
    yield fake_openrouter_server
    fake_openrouter_server.ensure_running()


@pytest.fixture(scope="session")
def fake_ollama_server() -> Iterator[FakeHandle]:
    state = FakeState()
    with RunningFake(ollama.create_app(state)) as running:
        yield FakeHandle(running, state)


@pytest.fixture
def fake_ollama(fake_ollama_server: FakeHandle) -> Iterator[FakeHandle]:
    fake_ollama_server.ensure_running()
    fake_ollama_server.reset()
    yield fake_ollama_server
    fake_ollama_server.ensure_running()


@pytest.fixture(scope="session")
def fake_openai_compat_server() -> Iterator[FakeHandle]:
    """The OpenAI-compatible fake (no key required unless a test configures ``api_key``)."""
    state = FakeState()
    with RunningFake(openai_compat.create_app(state)) as running:
        yield FakeHandle(running, state, "/v1")


@pytest.fixture
def fake_openai_compat(fake_openai_compat_server: FakeHandle) -> Iterator[FakeHandle]:
    fake_openai_compat_server.ensure_running()
    fake_openai_compat_server.reset()
    yield fake_openai_compat_server
    fake_openai_compat_server.ensure_running()
