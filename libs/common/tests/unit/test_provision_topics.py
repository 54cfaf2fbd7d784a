"""The topic plan the provisioning step (local script and Kubernetes Job) reads from the environment."""

from __future__ import annotations

import pytest

from llmts_common.contracts.topics import ALL_TOPICS
from llmts_common.provision_topics import TopicPlan


def test_defaults_are_the_local_ones() -> None:
    plan = TopicPlan.from_env({})
    topics = {t.name: t for t in plan.topics()}
    assert len(topics) == 2 * len(ALL_TOPICS)
    assert topics["generation.commands"].num_partitions == 3
    assert topics["generation.commands"].replication_factor == 1
    assert topics["generation.commands.dlq"].num_partitions == 1
    assert topics["generation.commands"].topic_configs == {
        "retention.ms": "604800000",
        "cleanup.policy": "delete",
    }
    assert topics["generation.commands.dlq"].topic_configs["retention.ms"] == "2592000000"


def test_overlay_values_prefix_and_min_isr() -> None:
    plan = TopicPlan.from_env(
        {
            "KAFKA_TOPIC_PREFIX": "staging.",
            "TOPIC_PARTITIONS": "6",
            "TOPIC_REPLICATION_FACTOR": "3",
            "TOPIC_MIN_INSYNC_REPLICAS": "2",
        }
    )
    topics = {t.name: t for t in plan.topics()}
    assert set(topics) == {f"staging.{t}" for t in ALL_TOPICS} | {f"staging.{t}.dlq" for t in ALL_TOPICS}
    events = topics["staging.export.events"]
    assert (events.num_partitions, events.replication_factor) == (6, 3)
    assert events.topic_configs["min.insync.replicas"] == "2"
    assert topics["staging.export.events.dlq"].replication_factor == 3


@pytest.mark.parametrize(
    "env",
    [
        {"TOPIC_PARTITIONS": "0"},
        {"TOPIC_REPLICATION_FACTOR": "0"},
        {"TOPIC_REPLICATION_FACTOR": "1", "TOPIC_MIN_INSYNC_REPLICAS": "2"},
    ],
)
def test_impossible_values_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="TOPIC_"):
        TopicPlan.from_env(env)
