"""The provisioning step against the local broker: every topic and DLQ under a prefix of its own, then nothing."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from tests.support.names import unique_topic_prefix

from llmts_common.contracts.topics import ALL_TOPICS
from llmts_common.kafka_security import kafka_client_options
from llmts_common.provision_topics import TopicPlan, provision
from llmts_common.settings import KafkaSettings

pytestmark = pytest.mark.connected


async def test_creates_every_topic_once(kafka_bootstrap: str) -> None:
    prefix = unique_topic_prefix("provision")
    plan = TopicPlan(prefix=prefix, partitions=2, retention_ms=3_600_000)
    options = kafka_client_options(KafkaSettings(kafka_bootstrap_servers=kafka_bootstrap))
    created = await provision(options, plan)
    assert sorted(created) == sorted(
        [f"{prefix}{t}" for t in ALL_TOPICS] + [f"{prefix}{t}.dlq" for t in ALL_TOPICS]
    )
    assert await provision(options, plan) == []  # idempotent
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        described = await admin.describe_topics(
            [f"{prefix}generation.commands", f"{prefix}generation.commands.dlq"]
        )
        partitions = {d["topic"]: len(d["partitions"]) for d in described}
        assert partitions == {f"{prefix}generation.commands": 2, f"{prefix}generation.commands.dlq": 1}
    finally:
        await admin.delete_topics(created)
        await admin.close()
