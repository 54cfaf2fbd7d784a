"""A throwaway database on the local MongoDB-wire server for tests of one service's erasure of a deleted user."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pymongo import AsyncMongoClient

from tests.support.names import unique_db


@asynccontextmanager
async def temp_db(name: str) -> AsyncIterator[Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        os.environ.get("MONGO_URL", "mongodb://127.0.0.1:27017")
    )
    db_name = unique_db(name)
    try:
        yield client[db_name]
    finally:
        await client.drop_database(db_name)
        await client.close()
