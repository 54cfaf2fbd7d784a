"""The Strimzi KafkaUsers (deploy/k8s/components/kafka-users) grant each service exactly the Kafka access its code
uses, and the kafka-auth component wires each service to its own user.

- Read: the topics of the service's consumers, as registered on its broker by its real ``bootstrap()`` (nothing
  connects); Write on their dead-letter topics; its consumer groups under the ``llmts-<service>`` prefix.
- Write: the topics of the contract messages the service's code constructs (the contracts are the only messages).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmts_common.contracts import ALL_MESSAGES
from llmts_common.contracts.topics import dlq_topic
from llmts_common.runtime import ServiceRuntime
from llmts_common.settings import KafkaSettings

ROOT = Path(__file__).resolve().parents[2]
USERS = ROOT / "deploy/k8s/components/kafka-users/kafka-users.yaml"
AUTH = ROOT / "deploy/k8s/components/kafka-auth"
SERVICES = ("gateway", "auth", "catalog", "templates", "generator", "exporter")


def kafka_users() -> dict[str, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(USERS.read_text()) if d]
    assert all(d["kind"] == "KafkaUser" for d in docs)
    return {d["metadata"]["name"]: d for d in docs}


def acls(user: dict[str, Any]) -> dict[tuple[str, str, str], set[str]]:
    out: dict[tuple[str, str, str], set[str]] = {}
    for acl in user["spec"]["authorization"]["acls"]:
        r = acl["resource"]
        key = (r["type"], r.get("name", ""), r.get("patternType", "literal"))
        out.setdefault(key, set()).update(acl["operations"])
    return out


def consumed(service: str) -> list[tuple[str, str | None]]:
    """(topic, group id) of every subscriber the service's bootstrap registers."""
    result = importlib.import_module(f"llmts_{service}.bootstrap").bootstrap()
    app = result[0]
    runtime = app.state.runtime
    assert isinstance(runtime, ServiceRuntime)
    assert runtime.broker is not None
    return [(topic, sub.group_id) for sub in runtime.broker.subscribers for topic in sub.topic_names]


def produced(service: str) -> set[str]:
    source = "\n".join(p.read_text() for p in (ROOT / "services" / service / "src").rglob("*.py"))
    return {m.TOPIC for m in ALL_MESSAGES if re.search(rf"\b{m.__name__}\(", source)}


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_gets_exactly_the_topics_and_groups_its_code_uses(service: str) -> None:
    user = kafka_users()[f"llmts-{service}"]
    assert user["metadata"]["labels"]["strimzi.io/cluster"] == "llmts"
    assert user["spec"]["authentication"]["type"] == "scram-sha-512"
    granted = acls(user)

    subscriptions = consumed(service)
    reads = {topic for topic, _ in subscriptions}
    expected: dict[tuple[str, str, str], set[str]] = {("cluster", "", "literal"): {"IdempotentWrite"}}
    for topic in produced(service):
        expected[("topic", topic, "literal")] = {"Write", "Describe"}
    for topic in reads:
        expected[("topic", topic, "literal")] = {"Read", "Describe"}
        expected[("topic", dlq_topic(topic), "literal")] = {"Write", "Describe"}
    if reads:
        expected[("group", f"llmts-{service}", "prefix")] = {"Read", "Describe"}
    assert granted == expected
    for _, group in subscriptions:
        assert group is None or group.startswith(f"llmts-{service}")


def test_every_service_authenticates_as_its_own_user_with_its_own_secret() -> None:
    users = kafka_users()
    assert set(users) == {f"llmts-{s}" for s in SERVICES}
    for service in SERVICES:
        patch = yaml.safe_load((AUTH / "deployments" / f"{service}.yaml").read_text())
        (container,) = patch["spec"]["template"]["spec"]["containers"]
        assert container["name"] == service
        env = {e["name"]: e for e in container["env"]}
        assert env["KAFKA_SASL_USERNAME"]["value"] == f"llmts-{service}"
        ref = env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert (
            ref
            == users[f"llmts-{service}"]["spec"]["authentication"]["password"]["valueFrom"]["secretKeyRef"]
        )


def test_the_shared_kafka_settings_of_the_component_are_valid_settings() -> None:
    kustomization = yaml.safe_load((AUTH / "kustomization.yaml").read_text())
    (generator,) = kustomization["configMapGenerator"]
    literals = dict(line.split("=", 1) for line in generator["literals"])
    settings = KafkaSettings.model_validate(
        {k.lower(): v for k, v in literals.items()} | {"kafka_sasl_username": "u", "kafka_sasl_password": "p"}
    )
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_ssl_cafile == "/etc/llmts/kafka/ca.crt"
    mount = yaml.safe_load((AUTH / "deployments" / "generator.yaml").read_text())
    (container,) = mount["spec"]["template"]["spec"]["containers"]
    assert settings.kafka_ssl_cafile.startswith(container["volumeMounts"][0]["mountPath"] + "/")
