"""Generation benchmark (``make bench-generation``): the whole generation path through the gateway.

Starts (as processes, on free 127.0.0.1 ports) the fake OpenRouter, the templates service, the generator and the
gateway, plus an in-process JWKS endpoint for a throwaway signing key; assumes Kafka and the Mongo-wire server are
up (``scripts/infra.sh up``). Then:

1. fake latency L = 200 ms: one job of N = 1000 items at concurrency C = 32, submitted with ``POST /generate`` and
   watched over the WebSocket until the terminal event; ``wall`` runs from the 202 to that event and
   ``ideal = N · L / C`` where ``L`` is the mean time the fake spent per chat call in that job (its latency sleep
   plus its own handling, from its ``/_fake/stats``), so everything on the generator's side of the wire — the
   client SDK, the event loop, storage, Kafka — counts as overhead. The call latency the generator recorded
   (client included) is printed too, with the ratio it would give;
2. zero latency: the same job again, for throughput (``items_per_s``) and the generator's CPU per item (plus the
   CPU of every process, the benchmark's own included, so a saturated client would show).

Last line, exactly: ``generation: N=1000 L=200ms C=32 wall=<s> ideal=<s> ratio=<wall/ideal>
items_per_s=<zero-latency rate> cpu_ms_per_item=<generator CPU ms per item in the zero-latency run>``.

The llm-data-gen comparison of the issue is not run by this script (see services/generator/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import websockets
from joserfc import jwt
from joserfc.jwk import KeySet, OKPKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.server import RunningFake  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def infra_pids() -> dict[str, int]:
    out: dict[str, int] = {}
    for name in ("kafka", "mongo"):
        with contextlib.suppress(OSError, ValueError):
            out[name] = int((ROOT / "var" / "run" / f"{name}.pid").read_text().strip())
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


class Proc:
    def __init__(self, name: str, args: list[str], env: dict[str, str], port: int, log_dir: Path) -> None:
        self.name, self.args, self.env, self.port = name, args, env, port
        self.log = log_dir / f"{name}.log"
        self.p: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        out = self.log.open("ab")
        self.p = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)

    def stop(self) -> None:
        if self.p is not None and self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()

    def wait_ready(self, path: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.p is not None and self.p.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready:\n{self.log.read_text()[-3000:]}")


def jwks_app(key: OKPKey) -> Starlette:
    public = KeySet([OKPKey.import_key(key.as_dict(private=False))]).as_dict()

    async def jwks(_: Request) -> JSONResponse:
        return JSONResponse(public)

    return Starlette(routes=[Route("/.well-known/jwks.json", jwks)])


def make_token(key: OKPKey, sub: str) -> str:
    now = int(time.time())
    claims = {"iss": "llmts-auth", "aud": "llmts", "sub": sub, "iat": now, "exp": now + 7200, "typ": "access"}
    return jwt.encode({"alg": "Ed25519", "kid": key.kid}, claims, key, algorithms=["Ed25519"])


async def run_job(
    client: httpx.AsyncClient, gateway: str, token: str, template_id: str, n: int, c: int
) -> tuple[float, str, dict[str, Any]]:
    """POST /generate, watch the WebSocket until the terminal event; returns (seconds from the 202 to the terminal
    event, job id, final)."""
    # dedup off: the fake OpenRouter derives its answer from a call counter read after its latency sleep, so
    # concurrent calls get identical JSON (a fake artefact; real models vary). The benchmark measures speed.
    body = {"template_id": template_id, "count": n, "concurrency": c, "dedup": False}
    r = await client.post("/generate", json=body)
    r.raise_for_status()
    t0 = time.perf_counter()  # the job is accepted (202): the clock starts
    job_id = r.json()["job_id"]
    final: dict[str, Any] = {}
    ws_url = gateway.replace("http://", "ws://") + f"/ws/generate/{job_id}?token={token}"
    async with websockets.connect(ws_url, max_size=None) as ws:
        async for raw in ws:
            msg = json.loads(raw)
            t = msg.get("type", "")
            if t.endswith(("completed", "failed", "cancelled")) or (
                t == "snapshot"
                and msg["data"].get("status") in ("completed", "completed_with_errors", "failed", "cancelled")
            ):
                final = msg.get("data") or {}
                break
    wall = time.perf_counter() - t0
    return wall, job_id, final


async def call_timing(client: httpx.AsyncClient, job_id: str) -> tuple[float, float, float]:
    """(mean provider-call latency the generator recorded, epoch of the first call's start, epoch of the last
    call's end) — the latter two split the wall time into start-up, calls and tail."""
    r = await client.get(f"/history/{job_id}", params={"attempts_limit": 5000})
    r.raise_for_status()
    lat: list[float] = []
    first, last = float("inf"), 0.0
    for a in r.json()["attempts"]["items"]:
        if a.get("latency_ms") is None:
            continue
        lat.append(a["latency_ms"])
        with contextlib.suppress(KeyError, TypeError, ValueError):
            start = datetime.fromisoformat(str(a["started_at"]).replace("Z", "+00:00")).timestamp()
            first, last = min(first, start), max(last, start + a["latency_ms"] / 1000.0)
    return (sum(lat) / len(lat) / 1000.0 if lat else 0.0), first, last


async def fake_handler_totals(client: httpx.AsyncClient, fake_url: str) -> tuple[int, float]:
    r = await client.get(fake_url + "/_fake/stats")
    r.raise_for_status()
    stats = r.json()
    return int(stats["handler_calls"]), float(stats["handler_ms_total"])


async def main_async(args: argparse.Namespace) -> str:
    run = uuid.uuid4().hex[:8]
    log_dir = ROOT / "var" / "log" / f"bench-generation-{run}"
    log_dir.mkdir(parents=True, exist_ok=True)
    key = OKPKey.generate_key("Ed25519", parameters={"kid": f"bench-{run}"})
    jwks = RunningFake(jwks_app(key)).start()
    py = sys.executable
    ports = {n: free_port() for n in ("fake", "templates", "generator", "gateway")}
    topic = f"bench.generation.commands.{run}"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MONGO_DB", "KAFKA_GROUP", "OTEL_"))}
    base.update(
        {
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "WARNING",
            "KAFKA_BOOTSTRAP_SERVERS": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            "MONGO_URL": os.environ.get("MONGO_URL", "mongodb://127.0.0.1:27017"),
            "JWKS_URL": f"{jwks.base_url}/.well-known/jwks.json",
            "OPENROUTER_BASE_URL": f"http://127.0.0.1:{ports['fake']}/api/v1",
            "OPENROUTER_API_KEY": "sk-or-v1-bench",
            "TEMPLATES_URL": f"http://127.0.0.1:{ports['templates']}",
            "GENERATOR_URL": f"http://127.0.0.1:{ports['generator']}",
            "CATALOG_URL": "http://127.0.0.1:9",
            "AUTH_URL": "http://127.0.0.1:9",
            "EXPORTER_URL": "http://127.0.0.1:9",
            "COMMANDS_TOPIC": topic,
            "GENERATION_COMMANDS_TOPIC": topic,
        }
    )

    def env(svc: str, **extra: str) -> dict[str, str]:
        e = dict(base)
        e.update({"MONGO_DB": f"llmts_bench_{run}_{svc}", "KAFKA_GROUP_ID": f"llmts-{svc}-bench-{run}"})
        e.update(extra)
        return e

    procs = {
        "fake": Proc(
            "fake_openrouter",
            [
                py,
                "-m",
                "tests.fakes.openrouter",
                "--port",
                str(ports["fake"]),
                "--latency-ms",
                str(args.latency_ms),
            ],
            env("fake"),
            ports["fake"],
            log_dir,
        ),
        "templates": Proc(
            "templates",
            [py, "-m", "llmts_templates"],
            env("templates", TEMPLATES_PORT=str(ports["templates"])),
            ports["templates"],
            log_dir,
        ),
        "generator": Proc(
            "generator",
            [py, "-m", "llmts_generator"],
            env("generator", GENERATOR_PORT=str(ports["generator"])),
            ports["generator"],
            log_dir,
        ),
        "gateway": Proc(
            "gateway",
            [py, "-m", "llmts_gateway"],
            env("gateway", GATEWAY_PORT=str(ports["gateway"])),
            ports["gateway"],
            log_dir,
        ),
    }
    try:
        for p in procs.values():
            p.start()
        procs["fake"].wait_ready("/api/v1/models")
        for name in ("templates", "generator", "gateway"):
            procs[name].wait_ready("/health")
        await asyncio.sleep(3.0)  # consumer groups join (the gateway's events consumer starts at 'latest')
        token = make_token(key, f"bench-{run}")
        gateway = procs["gateway"].url
        async with httpx.AsyncClient(
            base_url=gateway, headers={"Authorization": f"Bearer {token}"}, timeout=120
        ) as client:
            r = await client.post(
                "/templates",
                json={
                    "name": "bench reviews",
                    "prompts": {"system": "You write short product reviews.", "user": "Review {{ index }}."},
                    "schema": {
                        "type": "object",
                        "properties": {
                            "title": {"type": "string"},
                            "stars": {"type": "integer", "minimum": 1, "maximum": 5},
                            "text": {"type": "string"},
                        },
                        "required": ["title", "stars", "text"],
                        "additionalProperties": False,
                    },
                    "validation": {"mode": "strict", "rules": []},
                    "model": {"provider": "openrouter", "id": "openai/gpt-4o-mini"},
                },
            )
            r.raise_for_status()
            template_id = r.json()["id"]
            # warm-up (connections, caches, consumer assignment)
            await run_job(client, gateway, token, template_id, 64, args.concurrency)

            n, c = args.count, args.concurrency
            fake_url = procs["fake"].url
            async with httpx.AsyncClient(timeout=30) as fake_client:
                calls0, ms0 = await fake_handler_totals(fake_client, fake_url)
                wall, job_id, final = await run_job(client, gateway, token, template_id, n, c)
                t_accepted = time.perf_counter() - wall
                calls1, ms1 = await fake_handler_totals(fake_client, fake_url)
                resp = await fake_client.post(fake_url + "/_fake/config", json={"latency_ms": 0})
                resp.raise_for_status()
            assert final.get("succeeded", final.get("counts", {}).get("succeeded")) == n, final
            server_s = (ms1 - ms0) / max(1, calls1 - calls0) / 1000.0
            ideal = n * server_s / c
            client_s, first_call, last_call = await call_timing(client, job_id)
            accepted = time.time() - (time.perf_counter() - t_accepted)
            ended = accepted + wall
            print(
                f"latency run: wall={wall:.2f}s calls={calls1 - calls0} fake_call_latency={server_s * 1000:.1f}ms "
                f"ideal={ideal:.2f}s nominal_ideal={n * args.latency_ms / 1000 / c:.2f}s | generator-recorded "
                f"call latency={client_s * 1000:.1f}ms (ratio against it: {wall / (n * client_s / c):.3f}) | "
                f"202→first call={first_call - accepted:.2f}s calls={last_call - first_call:.2f}s "
                f"last answer→terminal event={ended - last_call:.2f}s",
                flush=True,
            )

            gen_pid = procs["generator"].p.pid if procs["generator"].p else 0
            pids = {name: p.p.pid for name, p in procs.items() if p.p is not None}
            pids.update(infra_pids())
            before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            pids["bench"] = os.getpid()
            before["bench"] = cpu_seconds(os.getpid())
            cpu0 = cpu_seconds(gen_pid)
            zwall, zid, zfinal = await run_job(client, gateway, token, template_id, n, args.zero_concurrency)
            cpu1 = cpu_seconds(gen_pid)
            z_ended = time.time()
            spent = {
                name: round((cpu_seconds(pid) - before[name]) * 1000 / n, 2) for name, pid in pids.items()
            }
            print(f"zero-latency CPU ms per item by process: {spent}", flush=True)
            assert zfinal.get("succeeded", zfinal.get("counts", {}).get("succeeded")) == n, zfinal
            rate = n / zwall
            cpu_ms = (cpu1 - cpu0) * 1000 / n
            others = {name: p.p.pid for name, p in procs.items() if p.p is not None and name != "generator"}
            _zlat, z_first, z_last = await call_timing(client, zid)
            z_accepted = z_ended - zwall
            print(
                f"zero-latency run: wall={zwall:.2f}s items_per_s={rate:.1f} generator_cpu_ms_per_item={cpu_ms:.2f} "
                f"| 202→first call={z_first - z_accepted:.2f}s calls={z_last - z_first:.2f}s "
                f"last answer→terminal event={z_ended - z_last:.2f}s",
                flush=True,
            )
            print(f"logs: {log_dir}  pids: generator={gen_pid} {others}", flush=True)
            return (
                f"generation: N={n} L={args.latency_ms}ms C={c} wall={wall:.2f} ideal={ideal:.2f} "
                f"ratio={wall / ideal:.3f} items_per_s={rate:.1f} cpu_ms_per_item={cpu_ms:.2f}"
            )
    finally:
        for p in reversed(list(procs.values())):
            p.stop()
        jwks.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--zero-concurrency", type=int, default=32, help="job concurrency of the zero-latency run"
    )
    args = parser.parse_args()
    line = asyncio.run(main_async(args))
    print(line, flush=True)


if __name__ == "__main__":
    main()
