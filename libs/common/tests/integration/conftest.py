from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

from llmts_common.mongo import Database, create_client

MONGO_URL = os.environ.get("MONGO_URL", "mongodb://127.0.0.1:27017")
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    client = create_client(MONGO_URL, server_selection_timeout_ms=10_000)
    name = f"llmts_test_common_{uuid.uuid4().hex[:10]}"
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
    return f"test.common.{uuid.uuid4().hex[:10]}"
