"""The whole system as real processes for end-to-end tests: fake OpenRouter + fake Ollama and the six services,
on their own ports and databases, talking to the local Kafka and MongoDB-wire server that `make test` started.

Used by ``tests/e2e/conftest.py`` (session fixture ``stack``), the benchmarks and the chaos scenarios.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
from cryptography.fernet import Fernet

from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("auth", "catalog", "templates", "generator", "exporter", "gateway")
READY_PATHS = {"fake_openrouter": "/api/v1/models", "fake_ollama": "/api/version", "fake_otlp": "/health"}


@dataclass
class Proc:
    name: str
    args: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.args,
            env=self.env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def signal(self, sig: int) -> None:
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 30.0) -> int | None:
        if not self.popen:
            return None
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait(10)
        if self._log:
            self._log.close()
        return self.popen.returncode

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.popen:
            self.popen.wait(10)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


@dataclass
class Stack:
    run_id: str
    log_dir: Path
    procs: dict[str, Proc] = field(default_factory=dict)
    openrouter_latency_ms: int = 0
    # a real Ollama (the embedded local model) instead of the fake one, for the connected-model tier
    ollama_base_url: str | None = None
    # an OpenAI-compatible server (e.g. that Ollama's /v1); None = the provider is not configured in this stack
    openai_compatible_base_url: str | None = None
    # more environment for every process (e.g. OPENAI_COMPATIBLE_PRICES), applied last
    extra_env: dict[str, str] = field(default_factory=dict)
    # the INTERNAL_TOKEN of every service of this stack (service-to-service routes), one per stack
    internal_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def gateway(self) -> str:
        return self.procs["gateway"].url

    @property
    def fake_openrouter(self) -> str:
        return self.procs["fake_openrouter"].url

    @property
    def fake_otlp(self) -> str:
        return self.procs["fake_otlp"].url

    @property
    def fake_ollama(self) -> str:
        return self.procs["fake_ollama"].url

    @property
    def admin_email(self) -> str:
        """The address that gets the admin role in this stack."""
        return f"admin-{self.run_id}@example.com"

    def topic(self, name: str) -> str:
        """The real Kafka topic of a logical topic in this stack."""
        return f"e2e-{self.run_id}.{name}"

    def url(self, name: str) -> str:
        return self.procs[name].url

    def build(self) -> Stack:
        py = sys.executable
        ports = {name: free_port() for name in (*SERVICES, "fake_openrouter", "fake_ollama", "fake_otlp")}
        fake_or = f"http://127.0.0.1:{ports['fake_openrouter']}"
        fake_ol = f"http://127.0.0.1:{ports['fake_ollama']}"
        base_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("MONGO_DB", "KAFKA_GROUP", "OTEL_"))
        }
        base_env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "ENVIRONMENT": "test",
                "LOG_LEVEL": os.environ.get("E2E_LOG_LEVEL", "INFO"),
                "KAFKA_BOOTSTRAP_SERVERS": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
                "MONGO_URL": os.environ.get("MONGO_URL", "mongodb://127.0.0.1:27017"),
                "JWKS_URL": f"http://127.0.0.1:{ports['auth']}/.well-known/jwks.json",
                "OPENROUTER_BASE_URL": f"{fake_or}/api/v1",
                "OPENROUTER_API_KEY": "sk-or-v1-e2e-test-key",
                "OLLAMA_BASE_URL": self.ollama_base_url or fake_ol,
                # blank = not configured: a stack never inherits a real server from the developer's environment
                "OPENAI_COMPATIBLE_BASE_URL": self.openai_compatible_base_url or "",
                "CATALOG_REFRESH_SECONDS": "60",
                "KAFKA_GROUP_PREFIX": f"e2e-{self.run_id}",
                # every topic of this stack is its own (e2e-<run>.generation.commands, …): a new stack never
                # replays an older stack's commands or events, and chaos runs cannot cross-talk
                "KAFKA_TOPIC_PREFIX": f"e2e-{self.run_id}.",
                # spans of every service go to an in-memory collector, so tests can follow one trace across them
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{ports['fake_otlp']}/v1/traces",
                "OTEL_BSP_SCHEDULE_DELAY": "300",
                "INTERNAL_TOKEN": self.internal_token,
                # auth encrypts its signing keys at rest, as in production
                "SIGNING_KEYS_ENCRYPTION_KEY": Fernet.generate_key().decode(),
                # absolute links in events (dataschema, ExportReady's signed download link) point at this gateway
                "PUBLIC_BASE_URL": f"http://127.0.0.1:{ports['gateway']}",
                # whoever registers with this address is an admin of this stack (auth ADMIN_EMAILS)
                "ADMIN_EMAILS": self.admin_email,
                # every suite registers its users from 127.0.0.1: the registration throttle (finding 4) is tested
                # by test_security_auth.py on a stack of its own
                "REGISTER_MAX_PER_IP": "100000",
            }
        )
        for svc in SERVICES:
            base_env[f"{svc.upper()}_URL"] = f"http://127.0.0.1:{ports[svc]}"
        base_env.update(GENEROUS_QUOTAS)  # suites that test the default quotas set them back via extra_env
        base_env.update(self.extra_env)
        self.procs["fake_openrouter"] = Proc(
            "fake_openrouter",
            [
                py,
                "-m",
                "tests.fakes.openrouter",
                "--port",
                str(ports["fake_openrouter"]),
                "--latency-ms",
                str(self.openrouter_latency_ms),
            ],
            dict(base_env),
            ports["fake_openrouter"],
            self.log_dir / "fake_openrouter.log",
        )
        self.procs["fake_otlp"] = Proc(
            "fake_otlp",
            [py, "-m", "tests.fakes.otlp", "--port", str(ports["fake_otlp"])],
            dict(base_env),
            ports["fake_otlp"],
            self.log_dir / "fake_otlp.log",
        )
        self.procs["fake_ollama"] = Proc(
            "fake_ollama",
            [py, "-m", "tests.fakes.ollama", "--port", str(ports["fake_ollama"])],
            dict(base_env),
            ports["fake_ollama"],
            self.log_dir / "fake_ollama.log",
        )
        for svc in SERVICES:
            env = dict(base_env)
            env[f"{svc.upper()}_PORT"] = str(ports[svc])
            env["MONGO_DB"] = f"llmts_e2e_{self.run_id}_{svc}"
            env["KAFKA_GROUP_ID"] = f"llmts-{svc}-e2e-{self.run_id}"
            self.procs[svc] = Proc(
                svc, [py, "-m", f"llmts_{svc}"], env, ports[svc], self.log_dir / f"{svc}.log"
            )
        return self

    def start(self, timeout: float = 120.0) -> Stack:
        for proc in self.procs.values():
            proc.start()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 120.0, names: tuple[str, ...] | None = None) -> None:
        deadline = time.monotonic() + timeout
        pending = set(names or self.procs)
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                proc = self.procs[name]
                if not proc.alive():
                    raise RuntimeError(f"{name} exited early:\n{proc.log_tail()}")
                path = READY_PATHS.get(name, "/ready")
                try:
                    r = httpx.get(proc.url + path, timeout=3.0)
                    if r.status_code == 200 and _connected(path, r):
                        pending.discard(name)
                except httpx.HTTPError:
                    pass
            time.sleep(0.3)
        if pending:
            tails = "\n".join(f"--- {n}\n{self.procs[n].log_tail()}" for n in pending)
            raise RuntimeError(f"not ready in {timeout}s: {sorted(pending)}\n{tails}")

    def restart(self, name: str, *, kill: bool = False, timeout: float = 60.0) -> None:
        proc = self.procs[name]
        if kill:
            proc.kill()
        else:
            proc.stop()
        proc.start()
        self.wait_ready(timeout, (name,))

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            self.procs[name].stop()


def _connected(path: str, answer: httpx.Response) -> bool:
    """A service is ready without Kafka (reported, not required); a test stack waits for it to be connected."""
    if path != "/ready":
        return True
    kafka = answer.json().get("checks", {}).get("kafka", {"ready": True})
    return bool(kafka.get("connected", kafka.get("ready")))  # its consumers started (a ping may be slow)


# the gateway's per-user quotas, high enough for every suite's jobs (the security suite tests the defaults)
GENEROUS_QUOTAS = {
    "QUOTA_MAX_ITEMS_PER_JOB": "10000",
    "QUOTA_MAX_ACTIVE_JOBS": "1000",
    "QUOTA_MAX_ITEMS_PER_DAY": "100000000",
    "QUOTA_BUDGET_USD": "1000000",
}


def new_stack(
    log_dir: Path | None = None,
    *,
    openrouter_latency_ms: int = 0,
    ollama_base_url: str | None = None,
    openai_compatible_base_url: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Stack:
    run_id = uuid.uuid4().hex[:8]
    log_dir = log_dir or ROOT / "var" / "log" / f"e2e-{run_id}"
    log_dir.mkdir(parents=True, exist_ok=True)
    return Stack(
        run_id=run_id,
        log_dir=log_dir,
        openrouter_latency_ms=openrouter_latency_ms,
        ollama_base_url=ollama_base_url,
        openai_compatible_base_url=openai_compatible_base_url,
        extra_env=dict(extra_env or {}),
    ).build()
