"""Integration fixtures: the real auth app (Mongo-wire + Kafka on 127.0.0.1) in-process, and a fake OAuth server.

Each session uses its own database (``llmts_auth_test_<uuid>``), dropped at the end; shared data is never touched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from services.auth.tests.support import BASE, drop_database, make_settings
from tests.fakes.oauth import FakeOAuth, create_app
from tests.fakes.server import RunningFake

from llmts_auth.bootstrap import bootstrap
from llmts_auth.settings import AuthSettings


@pytest.fixture(scope="session")
def fake_oauth() -> Iterator[FakeOAuth]:
    fake = FakeOAuth()
    with RunningFake(create_app(fake)) as running:
        fake.base_url = running.base_url
        yield fake


@pytest.fixture
def oauth(fake_oauth: FakeOAuth) -> FakeOAuth:
    fake_oauth.reset()
    return fake_oauth


@pytest.fixture(scope="session")
def settings(fake_oauth: FakeOAuth) -> AuthSettings:
    return make_settings(**fake_oauth.settings())


@pytest.fixture(scope="session")
async def auth_app(settings: AuthSettings) -> AsyncIterator[FastAPI]:
    app, _runtime = bootstrap(settings)
    async with app.router.lifespan_context(app):
        yield app
    await drop_database(settings)


@pytest.fixture
async def client(auth_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=auth_app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        yield c
