from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from tests.support.names import unique, unique_db

from llmts_common.mongo import Database, create_client

MONGO_URL = os.environ.get("MONGO_URL", "mongodb://127.0.0.1:27017")
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    client = create_client(MONGO_URL, server_selection_timeout_ms=10_000)
    name = unique_db("common")
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


@pytest.fixture
def kafka_bootstrap() -> str:
    return KAFKA


@pytest.fixture
def unique_topic() -> str:
    return unique("test.common.")
