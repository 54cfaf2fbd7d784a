"""Integration tier: the real generator (lifespan, consumer, runners) on the local Kafka + Mongo-wire server,
with the fake OpenRouter in-process.

Isolation: a unique database, consumer group and *commands topic* per session (so no other session's
commands are replayed here); events go to the shared ``generation.events`` and are read by job id.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from joserfc.jwk import OKPKey
from services.generator.tests.support import EventTap, ensure_topic, token_maker
from tests.fakes.fixtures import (  # noqa: F401
    OPENROUTER_TEST_KEY,
    FakeHandle,
    fake_openrouter,
    fake_openrouter_server,
)
from tests.support.internal import INTERNAL_TOKEN
from tests.support.tokens import signing_key, verifier_for

from llmts_common.contracts import GenerationRequested, Message
from llmts_common.mongo import create_client
from llmts_generator.bootstrap import Generator, bootstrap
from llmts_generator.domain.state import is_terminal
from llmts_generator.settings import GeneratorSettings
from llmts_providers import ProviderFactory, ProviderSettings

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
MONGO_URL = os.environ.get("MONGO_URL", "mongodb://127.0.0.1:27017")


@pytest.fixture(scope="session")
def key() -> OKPKey:
    return signing_key()


@pytest.fixture(scope="session")
def token_for(key: OKPKey) -> Callable[[str], str]:
    return token_maker(key)


@pytest.fixture(scope="session")
def session_id() -> str:
    return uuid.uuid4().hex[:10]


def make_settings(session_id: str, **over: Any) -> GeneratorSettings:
    values: dict[str, Any] = {
        "mongo_db": f"llmts_generator_it_{session_id}",
        "mongo_url": MONGO_URL,
        "kafka_bootstrap_servers": KAFKA,
        "kafka_group_id": f"llmts-generator-it-{session_id}",
        "kafka_client_id": f"generator-it-{session_id}",
        "commands_topic": f"test.generation.commands.{session_id}",
        "log_json": False,
        "lease_ttl_seconds": 3.0,
        "lease_renew_seconds": 0.3,
        "sweep_interval_seconds": 0.5,
        "retry_base_seconds": 0.05,
        "retry_cap_seconds": 0.5,
        "shutdown_grace_seconds": 5.0,
        "internal_token": INTERNAL_TOKEN,
    }
    values.update(over)
    return GeneratorSettings(**values)


@dataclass
class Harness:
    gen: Generator
    http: httpx.AsyncClient
    tap: EventTap
    fake: FakeHandle
    token_for: Callable[[str], str]
    settings: GeneratorSettings

    async def submit(self, message: Message) -> None:
        publisher = self.gen.runtime.publisher
        assert publisher is not None
        await publisher.publish_envelope(publisher.envelope_for(message), self.settings.commands_topic)

    async def job(self, job_id: str) -> dict[str, Any] | None:
        return await self.gen.repo.get_job(job_id)

    async def wait_status(
        self, job_id: str, predicate: Callable[[dict[str, Any]], bool], within: float = 30
    ) -> dict[str, Any]:
        deadline = time.monotonic() + within
        doc: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            doc = await self.job(job_id)
            if doc is not None and predicate(doc):
                return doc
            await asyncio.sleep(0.05)
        raise TimeoutError(
            f"job {job_id} never matched; last: {doc and {k: doc.get(k) for k in ('status', 'counts', 'settled')}}"
        )

    async def run(self, message: GenerationRequested, within: float = 30) -> dict[str, Any]:
        """Submit and wait until the job is terminal, settled, and its terminal event is on Kafka."""
        await self.submit(message)
        doc = await self.wait_status(
            message.job_id, lambda d: is_terminal(str(d.get("status"))) and bool(d.get("settled")), within
        )
        await self.tap.wait_for(message.job_id, _has_terminal, within)
        return doc

    def auth(self, user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token_for(user_id)}"}


def _has_terminal(evs: list[dict[str, Any]]) -> bool:
    return any(e["type"].rsplit(".", 1)[-1] in ("completed", "failed", "cancelled") for e in evs)


@pytest.fixture(scope="session")
async def tap() -> AsyncIterator[EventTap]:
    t = EventTap(KAFKA)
    await t.start()
    yield t
    await t.stop()


@pytest.fixture(scope="session")
async def generator(
    session_id: str,
    key: OKPKey,
    fake_openrouter_server: FakeHandle,  # noqa: F811
) -> AsyncIterator[tuple[Any, Generator, GeneratorSettings]]:
    settings = make_settings(session_id)
    await ensure_topic(KAFKA, settings.commands_topic)
    factory = ProviderFactory(
        ProviderSettings(
            openrouter_base_url=fake_openrouter_server.base_url,
            openrouter_api_key=OPENROUTER_TEST_KEY,
            provider_timeout_seconds=20,
        )
    )
    app, gen = bootstrap(
        settings, provider_factory=factory, verifier=verifier_for(key), configure_process=False
    )
    async with app.router.lifespan_context(app):
        yield app, gen, settings
    client = create_client(MONGO_URL)
    try:
        await client.drop_database(settings.mongo_db)  # this session's own database only
    finally:
        await client.close()


@pytest.fixture
async def h(
    generator: tuple[Any, Generator, GeneratorSettings],
    tap: EventTap,
    fake_openrouter: FakeHandle,  # noqa: F811
    token_for: Callable[[str], str],
) -> AsyncIterator[Harness]:
    app, gen, settings = generator
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://generator", timeout=30) as client:
        yield Harness(gen, client, tap, fake_openrouter, token_for, settings)
