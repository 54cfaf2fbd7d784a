"""Data written before a restart of the MongoDB-wire server is still there after it."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from llmts_common.mongo import create_client, ping

from .conftest import MONGO_URL

ROOT = Path(__file__).resolve().parents[4]


async def test_data_survives_a_restart() -> None:
    name = f"llmts_test_restart_{uuid.uuid4().hex[:8]}"
    client = create_client(MONGO_URL, server_selection_timeout_ms=20_000)
    try:
        await client[name]["things"].insert_many([{"_id": i, "v": f"value-{i}"} for i in range(50)])
        proc = await asyncio.create_subprocess_exec(
            "bash", str(ROOT / "scripts" / "infra.sh"), "restart", "mongo", cwd=ROOT
        )
        assert await proc.wait() == 0
        for _ in range(100):
            if await ping(client):
                break
            await asyncio.sleep(0.2)
        assert await client[name]["things"].count_documents({}) == 50
        assert await client[name]["things"].find_one({"_id": 42}) == {"_id": 42, "v": "value-42"}
    finally:
        await client.drop_database(name)
        await client.close()
