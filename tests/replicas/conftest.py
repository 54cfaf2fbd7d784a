"""A stack with two replicas of the gateway, the generator and the exporter (separate processes on the local Kafka
and MongoDB), the generator and exporter replicas behind a round-robin balancer each, as Kubernetes Services."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from tests.e2e.stack import Proc, Stack, new_stack
from tests.support.net import free_port

REPLICATED = ("gateway", "generator", "exporter")
BALANCED = ("generator", "exporter")  # reached by other services over HTTP


def replica_stack(**env: str) -> Stack:
    stack = new_stack(
        openrouter_latency_ms=400,
        extra_env={
            "LEASE_TTL_SECONDS": "4",
            "LEASE_RENEW_SECONDS": "0.5",
            "SWEEP_INTERVAL_SECONDS": "0.5",
            **env,
        },
    )
    for name in REPLICATED:
        first = stack.procs[name]
        first.env["INSTANCE_ID"] = f"{name}-a"
        port = free_port()
        env_b = {**first.env, f"{name.upper()}_PORT": str(port), "INSTANCE_ID": f"{name}-b"}
        stack.procs[f"{name}_b"] = Proc(f"{name}_b", first.args, env_b, port, stack.log_dir / f"{name}_b.log")
    for name in BALANCED:
        port = free_port()
        backends = [f"127.0.0.1:{stack.procs[n].port}" for n in (name, f"{name}_b")]
        args = [sys.executable, "-m", "tests.replicas.balancer", "--port", str(port)]
        for backend in backends:
            args += ["--backend", backend]
        env = dict(stack.procs[name].env)
        stack.procs[f"lb_{name}"] = Proc(f"lb_{name}", args, env, port, stack.log_dir / f"lb_{name}.log")
        for proc in stack.procs.values():  # everyone reaches the replicas through the balancer
            proc.env[f"{name.upper()}_URL"] = f"http://127.0.0.1:{port}"
    return stack


@pytest.fixture(scope="module")
def replicas() -> Iterator[Stack]:
    stack = replica_stack()
    try:
        stack.start(timeout=180.0)
        yield stack
    finally:
        stack.stop()
