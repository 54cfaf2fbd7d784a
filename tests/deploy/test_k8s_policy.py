"""The operator invariants of scripts/k8s_policy.py, on small rendered overlays."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


policy = _script("k8s_policy")

PART_OF = {"app.kubernetes.io/part-of": "llmts"}


def _deployment() -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"name": "generator", "namespace": "llmts", "labels": {"app": "generator"}},
        "spec": {
            "replicas": 2,
            "template": {
                "metadata": {"labels": {"app": "generator", **PART_OF}},
                "spec": {
                    "terminationGracePeriodSeconds": 40,
                    "topologySpreadConstraints": [
                        {"topologyKey": "kubernetes.io/hostname"},
                        {"topologyKey": "topology.kubernetes.io/zone"},
                    ],
                    "containers": [
                        {
                            "name": "generator",
                            "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
                            "envFrom": [{"configMapRef": {"name": "llmts-shared-abc123"}}],
                            "env": [
                                {
                                    "name": "MONGO_URL",
                                    "valueFrom": {
                                        "secretKeyRef": {"name": "llmts-generator-mongo", "key": "MONGO_URL"}
                                    },
                                }
                            ],
                        }
                    ],
                },
            },
        },
    }


def _docs() -> list[dict[str, Any]]:
    return [
        _deployment(),
        {
            "kind": "ConfigMap",
            "metadata": {"name": "llmts-shared-abc123", "namespace": "llmts"},
            "data": {"KAFKA_BOOTSTRAP_SERVERS": "llmts-kafka-bootstrap.kafka.svc:9093"},
        },
        {"kind": "PodDisruptionBudget", "metadata": {"name": "generator"}, "spec": {"maxUnavailable": 1}},
        {"kind": "KafkaTopic", "metadata": {"name": "generation-commands", "namespace": "kafka"}, "spec": {}},
    ]


def test_a_sound_overlay_passes() -> None:
    assert policy.problems(_docs(), 2) == []


def test_each_broken_invariant_is_reported() -> None:
    docs = copy.deepcopy(_docs())
    pod = docs[0]["spec"]["template"]
    pod["metadata"]["labels"].pop("app.kubernetes.io/part-of")
    container = pod["spec"]["containers"][0]
    container.pop("lifecycle")
    container["env"][0]["valueFrom"]["secretKeyRef"]["name"] = "llmts-secrets"
    container["envFrom"][0]["configMapRef"]["name"] = "llmts-shared"  # not the generated name
    pod["spec"]["topologySpreadConstraints"] = []
    docs[0]["spec"]["replicas"] = 1
    docs[2]["spec"] = {"minAvailable": 1}
    found = "\n".join(policy.problems(docs, 2))
    for expected in (
        "no network policy lets them out",
        "no preStop sleep",
        "MONGO_URL must come from the Secret llmts-generator-mongo",
        "ConfigMap llmts-shared is not in the render",
        "no topology spread",
        "fewer than 2",
        "use maxUnavailable",
    ):
        assert expected in found


def test_a_grace_period_shorter_than_the_shutdown_is_reported() -> None:
    docs = _docs()
    docs[0]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 20
    assert any("terminationGracePeriodSeconds 20" in p for p in policy.problems(docs, 1))


def test_the_kafka_namespace_story_holds() -> None:
    docs = _docs()
    docs[3]["metadata"]["namespace"] = "llmts"
    assert any("application's namespace" in p for p in policy.problems(docs, 1))
    docs = _docs()
    docs[1]["data"]["KAFKA_BOOTSTRAP_SERVERS"] = "llmts-kafka-bootstrap:9092"
    assert any("not a full name in the Kafka namespace kafka" in p for p in policy.problems(docs, 1))
