"""Create every topic and its dead-letter topic, idempotently (partitions, retention, cleanup policy per topic).

Settings (env): KAFKA_BOOTSTRAP_SERVERS, TOPIC_PARTITIONS (default 3), TOPIC_REPLICATION_FACTOR (default 1),
TOPIC_RETENTION_MS (default 7 days), DLQ_RETENTION_MS (default 30 days).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from llmts_common.contracts.topics import ALL_TOPICS, dlq_topic


def topic_specs() -> list[NewTopic]:
    partitions = int(os.environ.get("TOPIC_PARTITIONS", "3"))
    rf = int(os.environ.get("TOPIC_REPLICATION_FACTOR", "1"))
    retention = os.environ.get("TOPIC_RETENTION_MS", str(7 * 24 * 3600 * 1000))
    dlq_retention = os.environ.get("DLQ_RETENTION_MS", str(30 * 24 * 3600 * 1000))
    specs = []
    for topic in ALL_TOPICS:
        specs.append(
            NewTopic(
                topic, partitions, rf, topic_configs={"retention.ms": retention, "cleanup.policy": "delete"}
            )
        )
        specs.append(
            NewTopic(
                dlq_topic(topic),
                1,
                rf,
                topic_configs={"retention.ms": dlq_retention, "cleanup.policy": "delete"},
            )
        )
    return specs


async def provision(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="llmts-provisioner")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topic_specs() if t.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another provisioner won the race
                await admin.create_topics(missing)
        return [t.name for t in missing]
    finally:
        await admin.close()


def main() -> int:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    created = asyncio.run(provision(bootstrap))
    print(f"topics: {len(created)} created, {len(topic_specs()) - len(created)} already present")
    return 0


if __name__ == "__main__":
    sys.exit(main())
