"""Create every topic and its dead-letter topic, idempotently (partitions, replication, retention, cleanup policy).

Run where no Strimzi ``KafkaTopic`` does the job: ``python -m llmts_common.provision_topics`` from any service
image (the Kubernetes ``topics-job`` component) or ``scripts/provision_topics.py`` locally. Settings (env): the
services' KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL / SASL / SSL settings and KAFKA_TOPIC_PREFIX;
TOPIC_PARTITIONS (default 3), TOPIC_REPLICATION_FACTOR (default 1), TOPIC_MIN_INSYNC_REPLICAS (default: the
broker's), TOPIC_RETENTION_MS (default 7 days), DLQ_RETENTION_MS (default 30 days). Existing topics are left as
they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from llmts_common.contracts.topics import ALL_TOPICS, dlq_topic
from llmts_common.kafka_security import kafka_client_options

_DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicPlan:
    """What the provisioning step creates, read from the environment."""

    prefix: str = ""
    partitions: int = 3
    replication_factor: int = 1
    min_insync_replicas: int | None = None
    retention_ms: int = 7 * _DAY_MS
    dlq_retention_ms: int = 30 * _DAY_MS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TopicPlan:
        min_isr = env.get("TOPIC_MIN_INSYNC_REPLICAS", "").strip()
        plan = cls(
            prefix=env.get("KAFKA_TOPIC_PREFIX", ""),
            partitions=int(env.get("TOPIC_PARTITIONS", "3")),
            replication_factor=int(env.get("TOPIC_REPLICATION_FACTOR", "1")),
            min_insync_replicas=int(min_isr) if min_isr else None,
            retention_ms=int(env.get("TOPIC_RETENTION_MS", str(7 * _DAY_MS))),
            dlq_retention_ms=int(env.get("DLQ_RETENTION_MS", str(30 * _DAY_MS))),
        )
        if plan.partitions < 1 or plan.replication_factor < 1:
            raise ValueError("TOPIC_PARTITIONS and TOPIC_REPLICATION_FACTOR must be at least 1")
        if (
            plan.min_insync_replicas is not None
            and not 1 <= plan.min_insync_replicas <= plan.replication_factor
        ):
            raise ValueError("TOPIC_MIN_INSYNC_REPLICAS must be between 1 and TOPIC_REPLICATION_FACTOR")
        return plan

    def _configs(self, retention_ms: int) -> dict[str, str]:
        configs = {"retention.ms": str(retention_ms), "cleanup.policy": "delete"}
        if self.min_insync_replicas is not None:
            configs["min.insync.replicas"] = str(self.min_insync_replicas)
        return configs

    def _topic(self, name: str, partitions: int, retention_ms: int) -> NewTopic:
        return NewTopic(
            name,
            num_partitions=partitions,
            replication_factor=self.replication_factor,
            topic_configs=self._configs(retention_ms),
        )

    def topics(self) -> list[NewTopic]:
        """Every topic (``partitions``) and its DLQ (one partition, longer retention), with the prefix."""
        specs = []
        for topic in ALL_TOPICS:
            name = f"{self.prefix}{topic}"
            specs.append(self._topic(name, self.partitions, self.retention_ms))
            specs.append(self._topic(dlq_topic(name), 1, self.dlq_retention_ms))
        return specs


async def provision(client_options: Mapping[str, Any], plan: TopicPlan) -> list[str]:
    """Create the missing topics of ``plan``; the names created (an empty list when all exist).

    ``client_options``: ``bootstrap_servers`` and the security options (:func:`kafka_client_options`)."""
    admin = AIOKafkaAdminClient(**client_options, client_id="llmts-provisioner")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in plan.topics() if t.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another provisioner won the race
                await admin.create_topics(missing)
        return [t.name for t in missing]
    finally:
        await admin.close()


def main() -> int:
    plan = TopicPlan.from_env(os.environ)
    created = asyncio.run(provision(kafka_client_options(), plan))
    sys.stdout.write(
        f"topics: {len(created)} created, {len(plan.topics()) - len(created)} already present "
        f"(partitions {plan.partitions}, replication {plan.replication_factor})\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
