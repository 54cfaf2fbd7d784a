"""What an operator relies on when applying an overlay as is, checked on its rendered output (``make k8s-validate``).

Usage: ``python scripts/k8s_policy.py RENDERED.yaml [--min-replicas N]``. Schemas say an object is well formed;
this says the system holds together:
- every pod (Deployments, Jobs) carries ``app.kubernetes.io/part-of: llmts``, which the network policies select;
- every Deployment runs at least ``--min-replicas``, spreads over nodes and zones, sleeps in ``preStop`` and has a
  termination grace period that covers the sleep plus the services' 25 s of graceful shutdown;
- every PodDisruptionBudget uses ``maxUnavailable`` (a ``minAvailable`` equal to the replicas blocks drains);
- every service reads ``MONGO_URL`` from its own ``llmts-<app>-mongo`` Secret;
- every ConfigMap a pod references is in the render (generated names carry a hash);
- Kafka objects (``KafkaTopic``, ``KafkaUser``) are in one namespace other than the application's, and the
  services' ``KAFKA_BOOTSTRAP_SERVERS`` names that namespace in full (``<service>.<namespace>.svc:<port>``).
Exits non-zero with one line per problem.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from typing import Any

import yaml

PART_OF = ("app.kubernetes.io/part-of", "llmts")
SHUTDOWN_GRACE_S = 25
_SLEEP = re.compile(r"^\d+$")


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    template: dict[str, Any] = doc["spec"]["template"]
    return template


def _prestop_seconds(container: dict[str, Any]) -> int | None:
    pre = (container.get("lifecycle") or {}).get("preStop") or {}
    if "sleep" in pre:
        return int(pre["sleep"]["seconds"])
    command = (pre.get("exec") or {}).get("command") or []
    if len(command) == 2 and command[0].endswith("sleep") and _SLEEP.match(str(command[1])):
        return int(command[1])
    return None


def deployment_problems(doc: dict[str, Any], min_replicas: int) -> Iterator[str]:
    name = f"Deployment {doc['metadata']['name']}"
    spec, pod = doc["spec"], _pod(doc)["spec"]
    if int(spec.get("replicas", 1)) < min_replicas:
        yield f"{name}: {spec.get('replicas', 1)} replica(s), fewer than {min_replicas}: a drain stops the service"
    keys = {c.get("topologyKey") for c in pod.get("topologySpreadConstraints") or []}
    if not {"kubernetes.io/hostname", "topology.kubernetes.io/zone"} <= keys:
        yield f"{name}: no topology spread over nodes and zones"
    grace = int(pod.get("terminationGracePeriodSeconds", 30))
    for container in pod["containers"]:
        sleep = _prestop_seconds(container)
        if sleep is None:
            yield f"{name}: container {container['name']} has no preStop sleep"
        elif grace < sleep + SHUTDOWN_GRACE_S:
            yield f"{name}: terminationGracePeriodSeconds {grace} < preStop {sleep} s + {SHUTDOWN_GRACE_S} s shutdown"
        app = doc["metadata"].get("labels", {}).get("app", doc["metadata"]["name"])
        mongo = [e for e in container.get("env") or [] if e.get("name") == "MONGO_URL"]
        secret = ((mongo[0].get("valueFrom") or {}).get("secretKeyRef") or {}).get("name") if mongo else None
        if secret != f"llmts-{app}-mongo":
            yield f"{name}: MONGO_URL must come from the Secret llmts-{app}-mongo (got {secret})"


def pod_problems(doc: dict[str, Any], config_maps: set[str]) -> Iterator[str]:
    name = f"{doc['kind']} {doc['metadata']['name']}"
    template = _pod(doc)
    if (template.get("metadata") or {}).get("labels", {}).get(PART_OF[0]) != PART_OF[1]:
        yield f"{name}: pods lack {PART_OF[0]}={PART_OF[1]}: no network policy lets them out"
    for container in template["spec"]["containers"]:
        for source in container.get("envFrom") or []:
            ref = (source.get("configMapRef") or {}).get("name")
            if ref is not None and ref not in config_maps:
                yield f"{name}: ConfigMap {ref} is not in the render"


def kafka_problems(docs: list[dict[str, Any]]) -> Iterator[str]:
    kafka_ns = {d["metadata"].get("namespace") for d in docs if d["kind"] in ("KafkaTopic", "KafkaUser")}
    if not kafka_ns:
        return
    if len(kafka_ns) != 1 or None in kafka_ns:
        yield f"Kafka objects must share one explicit namespace, found {sorted(map(str, kafka_ns))}"
        return
    namespace = kafka_ns.pop()
    app_ns = {d["metadata"].get("namespace") for d in docs if d["kind"] == "Deployment"}
    if namespace in app_ns:
        yield f"KafkaTopic/KafkaUser in the application's namespace {namespace}: the default-deny cuts Kafka off"
    for doc in docs:
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("llmts-shared"):
            servers = str((doc.get("data") or {}).get("KAFKA_BOOTSTRAP_SERVERS", ""))
            for server in servers.split(","):
                host = server.rsplit(":", 1)[0]
                if not host.endswith(f".{namespace}.svc") and f".{namespace}.svc." not in host:
                    yield f"KAFKA_BOOTSTRAP_SERVERS {server}: not a full name in the Kafka namespace {namespace}"


def problems(docs: list[dict[str, Any]], min_replicas: int) -> list[str]:
    config_maps = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    out: list[str] = []
    for doc in docs:
        if doc["kind"] == "Deployment":
            out += deployment_problems(doc, min_replicas)
        if doc["kind"] in ("Deployment", "Job"):
            out += pod_problems(doc, config_maps)
        if doc["kind"] == "PodDisruptionBudget" and "maxUnavailable" not in doc["spec"]:
            out.append(
                f"PodDisruptionBudget {doc['metadata']['name']}: use maxUnavailable, never minAvailable"
            )
    out += kafka_problems(docs)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Operator invariants of a rendered overlay")
    parser.add_argument("rendered")
    parser.add_argument("--min-replicas", type=int, default=1)
    args = parser.parse_args(argv)
    with open(args.rendered, encoding="utf-8") as handle:
        docs = [d for d in yaml.safe_load_all(handle) if d]
    found = problems(docs, args.min_replicas)
    for problem in found:
        sys.stdout.write(f"k8s-policy: {problem}\n")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
