"""Follow one generation job on Kafka and download its export — see docs/consuming-events.md.

pip install aiokafka httpx
KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 python examples/consumer.py <job_id> [<out_dir>]
"""

import asyncio
import hashlib
import json
import os
import sys
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer

PREFIX = os.environ.get("KAFKA_TOPIC_PREFIX", "")  # empty unless the deployment prefixes its topics
JOB_ENDS = ("llmts.generation.completed", "llmts.generation.failed", "llmts.generation.cancelled")


async def follow(job_id: str, out_dir: Path) -> Path:
    consumer = AIOKafkaConsumer(
        f"{PREFIX}generation.events",
        f"{PREFIX}export.events",
        bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        group_id=None,  # a service of yours: its own group_id, and commit after handling
        auto_offset_reset="earliest",
    )
    seen: set[str] = set()
    ended, ready = False, None  # the two topics are not ordered with each other: wait for both
    await consumer.start()
    try:
        async for record in consumer:
            event = json.loads(record.value)  # structured-mode CloudEvent: the value is the whole event
            data = event["data"]
            if event["id"] in seen or data.get("job_id") != job_id:
                continue  # delivery is at least once: deduplicate on the event id
            seen.add(event["id"])
            print(event["type"], {k: data[k] for k in ("succeeded", "requested", "status") if k in data})
            if event["type"] == "llmts.export.failed":
                raise RuntimeError(f"export failed: {data['reason']}")
            ended = ended or event["type"] in JOB_ENDS
            ready = data if event["type"] == "llmts.export.ready" else ready
            if ended and ready:
                return download(ready, out_dir)
    finally:
        await consumer.stop()
    raise RuntimeError("the consumer stopped before the export was ready")


def download(data: dict, out_dir: Path) -> Path:
    body = httpx.get(data["download_url"], timeout=60).raise_for_status().content  # signed link: no token
    if hashlib.sha256(body).hexdigest() != data["sha256"]:
        raise RuntimeError("the file does not match the event's sha256")
    path = out_dir / f"{data['export_id']}.{data['format']}"
    path.write_bytes(body)
    print("downloaded", path, len(body), "bytes")
    return path


if __name__ == "__main__":
    asyncio.run(follow(sys.argv[1], Path(sys.argv[2] if len(sys.argv) > 2 else ".")))
