"""Measure: filter the catalog in Mongo or in memory? (the numbers behind the README's decision).

    uv run python services/catalog/tools/bench_filtering.py [copies]

Loads the fixture ``copies`` times (default 10, ~3,000 models) into a throw-away database of the local
MongoDB-wire server, then times the same query both ways. Drops the database at the end.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from llmts_catalog.domain.catalog import ModelQuery, query_models
from llmts_common.mongo import create_client
from llmts_providers.models import ModelRecord

FIXTURE = Path(__file__).resolve().parents[3] / "tests" / "fakes" / "data" / "openrouter_models.json"


def _timed(samples: list[float], started: float) -> None:
    samples.append((time.perf_counter() - started) * 1000)


def _report(label: str, samples: list[float]) -> None:
    sys.stdout.write(
        f"{label:<48} median {statistics.median(samples):8.2f} ms   max {max(samples):8.2f} ms\n"
    )


async def main(copies: int) -> None:
    raw = json.loads(FIXTURE.read_text())["data"]
    records = [
        ModelRecord.from_openrouter({**m, "id": f"{m['id']}~{i}" if i else m["id"]})
        for i in range(copies)
        for m in raw
    ]
    client = create_client("mongodb://127.0.0.1:27017")
    name = f"llmts_bench_catalog_{uuid.uuid4().hex[:8]}"
    col = client[name]["models"]
    try:
        t = time.perf_counter()
        await col.insert_many([{**r.to_document(), "_id": r.key} for r in records])
        sys.stdout.write(f"{len(records)} models inserted in {(time.perf_counter() - t) * 1000:.0f} ms\n")
        mongo_filter: dict[str, Any] = {"free": True, "structured_output": True}
        mongo_q: dict[str, Any] = {
            "$or": [
                {"id": {"$regex": "llama", "$options": "i"}},
                {"name": {"$regex": "llama", "$options": "i"}},
                {"description": {"$regex": "llama", "$options": "i"}},
            ]
        }
        samples: dict[str, list[float]] = {k: [] for k in ("mf", "mq", "load", "mem_f", "mem_q")}
        for _ in range(15):
            t = time.perf_counter()
            await col.count_documents(mongo_filter)
            [d async for d in col.find(mongo_filter).sort("name", 1).skip(0).limit(50)]
            _timed(samples["mf"], t)
            t = time.perf_counter()
            await col.count_documents(mongo_q)
            [d async for d in col.find(mongo_q).sort("name", 1).limit(50)]
            _timed(samples["mq"], t)
            t = time.perf_counter()
            loaded = [ModelRecord.from_document(d) async for d in col.find({})]
            _timed(samples["load"], t)
            t = time.perf_counter()
            query_models(loaded, ModelQuery(free=True, structured_output=True, sort="price"))
            _timed(samples["mem_f"], t)
            t = time.perf_counter()
            query_models(loaded, ModelQuery(q="llama", sort="name"))
            _timed(samples["mem_q"], t)
        _report("mongo: free+structured, count + page of 50", samples["mf"])
        _report("mongo: q=llama (regex on 3 fields) count + page", samples["mq"])
        _report("memory: reload the whole catalog from mongo", samples["load"])
        _report("memory: free+structured, sort by price, page", samples["mem_f"])
        _report("memory: q=llama, sort by name, page", samples["mem_q"])
    finally:
        await client.drop_database(name)
        await client.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10))
