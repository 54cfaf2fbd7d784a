"""A Kafka broker of a test's own (scripts/infra.sh on other ports with a private var dir), for tests that stop
Kafka: the shared broker of `make test` is never stopped by a test that runs beside others."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class PrivateKafka:
    var_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="llmts-kafka-")))
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _infra(self, *args: str, timeout: float = 180.0) -> None:
        env = {
            **os.environ,
            "LLMTS_VAR_DIR": str(self.var_dir),
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "KAFKA_HEAP_OPTS": "-Xms128m -Xmx384m",
            "STOP_TIMEOUT": "15",
        }
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "infra.sh"), *args], env=env, check=True, timeout=timeout
        )

    def start(self) -> PrivateKafka:
        """Start (or start again, with its data) and wait until it answers."""
        self._infra("start", "kafka")
        return self

    def stop(self) -> None:
        self._infra("stop", "kafka")

    def close(self) -> None:
        """Stop it and delete its data."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.var_dir, ignore_errors=True)
