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

3. the reference tool, llm-data-gen 1.1.8 (npm ``@1337plus/llmdatagen@1.1.8``, MIT), on the same fake at the same
   latency L, between steps 1 and 2: N = 20 items of its ``configs/examples/products.json`` (one task, as shipped
   otherwise: ``openrouter/auto``, its default 1 s ``batchDelay`` between items, one request at a time). The
   tarball is ``npm pack``-ed once into ``~/.cache/llmts/npm/1.1.8/`` and installed with its runtime dependencies
   (``--ignore-scripts``: the native builds serve only its web UI) into a temp dir, npm cache under
   ``~/.cache/llmts/npm/_cacache``; nothing of it enters the repo. Its base URL is hard-coded to OpenRouter's, so
   it runs as ``node --import bench/llmdatagen_preload.mjs …/index.js generate -c <cfg> -o <dir>
   --no-interactive``, the preload rewriting ``https://openrouter.ai/...`` to the fake. ``wall`` is the process
   wall time, ``items`` the objects it wrote, ``speedup`` = our items/s in step 1 (N / wall) ÷ its items/s.
   Printed as ``llm-data-gen: N=20 L=200ms wall=<s> items=<n> items_per_s=<…> speedup=<…> …`` before the last
   line, or ``llm-data-gen: skipped (<reason>)`` if it cannot run (no node/npm, no tarball, …).

4. adaptive concurrency, after step 2: a second fake OpenRouter at the same latency L with a **hidden capacity** of
   8 concurrent calls (``--max-concurrency 8``: a 9th call at once gets a 429 at once, with no Retry-After and no
   rate-limit headers) and a **fresh generator process** pointed at it (default settings: ceiling 64, adaptive
   limit starting at 16 — a process that learned nothing yet), then one job of N = 1000 at C = 32 through the
   gateway. ``ideal = N · L / 8`` with ``L`` measured at the fake as in step 1 (its admitted calls only; a refused
   call costs it no latency), ``share_429`` = the fake's 429 answers ÷ all chat calls it got. Printed as
   ``adaptive: N=1000 capacity=8 wall=<s> ideal=<s> ratio=<wall/ideal> share_429=<fraction>`` before the last
   line, after an ``adaptive run:`` line with the limits the job view showed while it ran. Targets: ratio ≤ 1.15,
   share_429 ≤ 0.02.

Last line, exactly: ``generation: N=1000 L=200ms C=32 wall=<s> ideal=<s> ratio=<wall/ideal>
items_per_s=<zero-latency rate> cpu_ms_per_item=<generator CPU ms per item in the zero-latency run>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import websockets
from joserfc.jwk import KeySet, OKPKey
from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.stack import GENEROUS_QUOTAS  # noqa: E402
from tests.fakes.server import RunningFake  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from tests.support.tokens import access_token, signing_key  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")

ADAPTIVE_CAPACITY = 8  # the hidden capacity of step 4's fake

LLMDATAGEN_VERSION = "1.1.8"
LLMDATAGEN_PKG = f"@1337plus/llmdatagen@{LLMDATAGEN_VERSION}"
NPM_CACHE = Path.home() / ".cache" / "llmts" / "npm"
LLMDATAGEN_PRELOAD = Path(__file__).resolve().with_name("llmdatagen_preload.mjs")
LLMDATAGEN_EXAMPLE = "products.json"
LLMDATAGEN_KEY = (
    "sk-or-v1-bench"  # the fake checks no key unless `api_key` is configured; the CLI needs one set
)


class LlmDataGenSkipped(Exception):
    """llm-data-gen could not be run; the message is the reason printed in ``llm-data-gen: skipped (…)``."""


def _run_tool(args: list[str], cwd: Path, timeout: float) -> str:
    try:
        r = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as e:
        raise LlmDataGenSkipped(f"{args[0]} not found on PATH") from e
    except subprocess.TimeoutExpired as e:
        raise LlmDataGenSkipped(f"`{' '.join(args[:3])}` timed out after {timeout:.0f}s") from e
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        raise LlmDataGenSkipped(f"`{' '.join(args[:3])}` exited {r.returncode}: {' | '.join(tail)}")
    return r.stdout


def llmdatagen_tarball() -> Path:
    """The npm tarball, ``npm pack``-ed into ``~/.cache/llmts/npm/1.1.8/`` unless already there (the templates tests
    cache it in the same place)."""
    dest = NPM_CACHE / LLMDATAGEN_VERSION
    tgz = dest / f"1337plus-llmdatagen-{LLMDATAGEN_VERSION}.tgz"
    if not tgz.is_file():
        dest.mkdir(parents=True, exist_ok=True)
        _run_tool(
            [
                "npm",
                "pack",
                LLMDATAGEN_PKG,
                "--pack-destination",
                str(dest),
                "--cache",
                str(NPM_CACHE / "_cacache"),
            ],
            dest,
            300,
        )
        if not tgz.is_file():
            raise LlmDataGenSkipped(f"`npm pack {LLMDATAGEN_PKG}` did not produce {tgz}")
    return tgz


def install_llmdatagen(work: Path) -> Path:
    """Install the cached tarball with its runtime dependencies into ``work``; returns the CLI entry (index.js).

    Installed as a dependency of a throwaway project rather than by ``npm install --omit=dev`` inside the extracted
    package: without a lockfile npm still resolves the package's devDependencies there, and one of them
    (``@unocss/postcss@66.12.0``) is not resolvable (ETARGET). ``--ignore-scripts`` skips its postinstall and the
    native bcrypt/better-sqlite3 builds, which only its web server uses."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise LlmDataGenSkipped("node/npm not found on PATH")
    tgz = llmdatagen_tarball()
    (work / "package.json").write_text('{"private": true}\n')
    _run_tool(
        [
            "npm",
            "install",
            "--omit=dev",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--no-save",
            "--prefer-offline",
            "--cache",
            str(NPM_CACHE / "_cacache"),
            str(tgz),
        ],
        work,
        600,
    )
    entry = work / "node_modules" / "@1337plus" / "llmdatagen" / "index.js"
    if not entry.is_file():
        raise LlmDataGenSkipped(f"npm install did not produce {entry}")
    return entry


def count_written_items(out_dir: Path) -> int:
    """Objects llm-data-gen wrote: ``output.type: array`` files are ``[obj, …]``, others ``{key: [obj, …]}``."""
    n = 0
    for f in out_dir.rglob("*.json"):
        data = json.loads(f.read_text())
        if isinstance(data, list):
            n += len(data)
        elif isinstance(data, dict):
            n += sum(len(v) for v in data.values() if isinstance(v, list))
    return n


async def run_llmdatagen(fake_url: str, n: int, log_dir: Path) -> tuple[float, int, int, str, int]:
    """Run llm-data-gen on ``n`` items against the fake; returns (process wall seconds, items written, chat calls
    the fake served meanwhile, model, its delay between items in ms)."""
    with tempfile.TemporaryDirectory(prefix="llmts-llmdatagen-") as tmp:
        work = Path(tmp)
        entry = await asyncio.to_thread(install_llmdatagen, work)
        config = json.loads((entry.parent / "configs" / "examples" / LLMDATAGEN_EXAMPLE).read_text())
        task = dict(config["generation"]["tasks"][0])
        task["count"] = n
        config["generation"]["tasks"] = [task]
        config["api"]["apiKey"] = LLMDATAGEN_KEY
        model = str(config["api"].get("model") or "openrouter/auto")
        batch_delay_ms = int(
            config["api"].get("batchDelay") or 1000
        )  # its default; `||`, so 0 means 1000 too
        config_path, out_dir = work / "config.json", work / "out"
        config_path.write_text(json.dumps(config, ensure_ascii=False, indent=2))
        async with httpx.AsyncClient(base_url=fake_url, timeout=30) as fake:
            r = await fake.get("/api/v1/models", params={"output_modalities": "all"})
            r.raise_for_status()
            if model.removesuffix(":online") not in {m["id"] for m in r.json()["data"]}:
                (await fake.post("/_fake/config", json={"accept_unknown_models": True})).raise_for_status()
            calls0 = (await fake.get("/_fake/stats")).json()["calls"]
            env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENROUTER_", "OTEL_"))}
            env.update(
                {"LLMDATAGEN_FAKE_BASE": fake_url, "OPENROUTER_API_KEY": LLMDATAGEN_KEY, "NO_COLOR": "1"}
            )
            log = log_dir / "llmdatagen.log"
            with log.open("wb") as out:
                t0 = time.perf_counter()
                proc = await asyncio.create_subprocess_exec(
                    "node",
                    "--import",
                    str(LLMDATAGEN_PRELOAD),
                    str(entry),
                    "generate",
                    "-c",
                    str(config_path),
                    "-o",
                    str(out_dir),
                    "--no-interactive",
                    cwd=work,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
                try:
                    rc = await asyncio.wait_for(proc.wait(), timeout=60 + 10 * n)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
                    raise LlmDataGenSkipped(f"did not finish within {60 + 10 * n}s (log: {log})") from None
                wall = time.perf_counter() - t0
            calls = (await fake.get("/_fake/stats")).json()["calls"] - calls0
        if rc != 0:
            raise LlmDataGenSkipped(
                f"exited {rc}: {log.read_text(errors='replace').strip()[-300:]!r} (log: {log})"
            )
        items = count_written_items(out_dir) if out_dir.is_dir() else 0
        if items == 0:
            raise LlmDataGenSkipped(f"wrote no items ({calls} chat calls reached the fake; log: {log})")
        return wall, items, calls, model, batch_delay_ms


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
    final = await watch_terminal(gateway, token, job_id)
    wall = time.perf_counter() - t0
    return wall, job_id, final


async def watch_terminal(
    gateway: str, token: str, job_id: str, seen: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The job's WebSocket until its terminal event (or a terminal snapshot); returns that event's data. ``seen``
    (when given) receives the terminal message as sent (``time``: when the event was published) and ``at``: when
    it arrived."""
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
                if seen is not None:
                    seen.update(msg, at=time.time())
                break
    return final


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


async def limits_seen(client: httpx.AsyncClient, job_id: str, out: list[int]) -> None:
    """The provider's current limit in GET /generate/{id} (through the gateway) every 0.5 s while the job runs."""
    while True:
        with contextlib.suppress(httpx.HTTPError, KeyError, TypeError, ValueError):
            r = await client.get(f"/generate/{job_id}")
            current = ((r.json().get("concurrency") or {}).get("openrouter") or {}).get("current")
            if isinstance(current, int):
                out.append(current)
        await asyncio.sleep(0.5)


async def run_adaptive(
    client: httpx.AsyncClient,
    gateway: str,
    token: str,
    template_id: str,
    procs: dict[str, Proc],
    fresh_generator: Proc,
    args: argparse.Namespace,
) -> str:
    """Step 4: a fresh generator against the fake with a hidden capacity of 8; returns the ``adaptive:`` line."""
    procs["generator"].stop()
    procs["generator"] = fresh_generator
    fresh_generator.start()
    fresh_generator.wait_ready("/health")
    procs["fake_capacity"].wait_ready("/api/v1/models")
    await asyncio.sleep(3.0)  # the fresh generator joins the commands consumer group
    fake_url = procs["fake_capacity"].url
    n, c, capacity = args.count, args.concurrency, ADAPTIVE_CAPACITY
    seen: list[int] = []
    async with httpx.AsyncClient(timeout=30) as fake_client:
        calls0, ms0 = await fake_handler_totals(fake_client, fake_url)
        body = {"template_id": template_id, "count": n, "concurrency": c, "dedup": False}
        r = await client.post("/generate", json=body)
        r.raise_for_status()
        t0 = time.perf_counter()
        job_id = r.json()["job_id"]
        poller = asyncio.create_task(limits_seen(client, job_id, seen))
        try:
            final = await watch_terminal(gateway, token, job_id)
        finally:
            poller.cancel()
        wall = time.perf_counter() - t0
        calls1, ms1 = await fake_handler_totals(fake_client, fake_url)
        stats = (await fake_client.get(fake_url + "/_fake/stats")).json()
    assert final.get("succeeded", final.get("counts", {}).get("succeeded")) == n, final
    latency_s = (ms1 - ms0) / max(1, calls1 - calls0) / 1000.0
    ideal = n * latency_s / capacity
    refused = int(stats["by_outcome"].get("429", 0))
    share = refused / max(1, int(stats["calls"]))
    spread = {v: seen.count(v) for v in sorted(set(seen))}
    print(
        f"adaptive run: fake_call_latency={latency_s * 1000:.1f}ms calls={stats['calls']} 429={refused} "
        f"max_active={stats['max_active']} | limit in GET /generate/<id> every 0.5 s (value: times seen): {spread}",
        flush=True,
    )
    return (
        f"adaptive: N={n} capacity={capacity} wall={wall:.2f} ideal={ideal:.2f} ratio={wall / ideal:.3f} "
        f"share_429={share:.4f}"
    )


async def fake_handler_totals(client: httpx.AsyncClient, fake_url: str) -> tuple[int, float]:
    r = await client.get(fake_url + "/_fake/stats")
    r.raise_for_status()
    stats = r.json()
    return int(stats["handler_calls"]), float(stats["handler_ms_total"])


async def drop_run_databases(label: str, run: str) -> None:
    """Drop the databases a run's stack created (``stack_env`` names them ``llmts_bench_<label>_<run>_<svc>``): the
    local Mongo-wire server keeps every database in one file, and a file grown by old runs slows every later one."""
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        os.environ.get("MONGO_URL", "mongodb://127.0.0.1:27017"), serverSelectionTimeoutMS=5000
    )
    try:
        prefix = f"llmts_bench_{label}_{run}_"
        for name in await client.list_database_names():
            if name.startswith(prefix):
                await client.drop_database(name)
    except Exception as exc:  # a bench's figures stand without its cleanup
        print(f"cleanup: databases of run {run} not dropped: {exc}", flush=True)
    finally:
        await client.close()


def service_procs(
    py: str,
    ports: Mapping[str, int],
    env: Callable[..., dict[str, str]],
    log_dir: Path,
    *,
    generator: Mapping[str, str] | None = None,
) -> dict[str, Proc]:
    """The templates, generator and gateway processes of a benchmark stack (each bench adds its own fakes before
    them): on their ports, the generator with ``generator`` on top, the gateway with generous quotas (a benchmark
    measures the service, not the admission limits)."""
    gen_env = env("generator", GENERATOR_PORT=str(ports["generator"]), **(generator or {}))
    gw_env = env("gateway", GATEWAY_PORT=str(ports["gateway"]), **GENEROUS_QUOTAS)
    tpl_env = env("templates", TEMPLATES_PORT=str(ports["templates"]))
    return {
        "templates": Proc("templates", [py, "-m", "llmts_templates"], tpl_env, ports["templates"], log_dir),
        "generator": Proc("generator", [py, "-m", "llmts_generator"], gen_env, ports["generator"], log_dir),
        "gateway": Proc("gateway", [py, "-m", "llmts_gateway"], gw_env, ports["gateway"], log_dir),
    }


async def stop_stack(procs: Mapping[str, Proc], jwks: RunningFake, label: str, run: str) -> None:
    """Stop a benchmark stack's processes (last started first) and its JWKS, and drop the run's databases."""
    for p in reversed(list(procs.values())):
        p.stop()
    jwks.stop()
    await drop_run_databases(label, run)


def stack_env(label: str, run: str, ports: Mapping[str, int], jwks_url: str) -> Callable[..., dict[str, str]]:
    """``env(service, **extra)``: the environment of one process of a benchmark stack (fake OpenRouter on
    ``ports["fake"]``, templates, generator, gateway; the other services unreachable). Every database, consumer
    group and topic of the run carries ``label`` and ``run``, like an e2e stack: a later ``make run`` never has to
    read through a benchmark's events."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MONGO_DB", "KAFKA_GROUP", "OTEL_"))}
    base.update(
        {
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "WARNING",
            "KAFKA_BOOTSTRAP_SERVERS": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            "MONGO_URL": os.environ.get("MONGO_URL", "mongodb://127.0.0.1:27017"),
            "JWKS_URL": f"{jwks_url}/.well-known/jwks.json",
            "OPENROUTER_BASE_URL": f"http://127.0.0.1:{ports['fake']}/api/v1",
            "OPENROUTER_API_KEY": "sk-or-v1-bench",
            "TEMPLATES_URL": f"http://127.0.0.1:{ports['templates']}",
            "GENERATOR_URL": f"http://127.0.0.1:{ports['generator']}",
            "CATALOG_URL": "http://127.0.0.1:9",
            "AUTH_URL": "http://127.0.0.1:9",
            "EXPORTER_URL": "http://127.0.0.1:9",
            "KAFKA_TOPIC_PREFIX": f"bench-{label}-{run}.",
        }
    )

    def env(svc: str, **extra: str) -> dict[str, str]:
        e = dict(base)
        e.update(
            {"MONGO_DB": f"llmts_bench_{label}_{run}_{svc}", "KAFKA_GROUP_ID": f"llmts-{svc}-{label}-{run}"}
        )
        e.update(extra)
        return e

    return env


async def main_async(args: argparse.Namespace) -> str:
    run = uuid.uuid4().hex[:8]
    log_dir = ROOT / "var" / "log" / f"bench-generation-{run}"
    log_dir.mkdir(parents=True, exist_ok=True)
    key = signing_key(f"bench-{run}")
    jwks = RunningFake(jwks_app(key)).start()
    py = sys.executable
    ports = {n: free_port() for n in ("fake", "fake_capacity", "templates", "generator", "gateway")}
    env = stack_env("gen", run, ports, jwks.base_url)

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
        "fake_capacity": Proc(
            "fake_openrouter_capacity",
            [
                py,
                "-m",
                "tests.fakes.openrouter",
                "--port",
                str(ports["fake_capacity"]),
                "--latency-ms",
                str(args.latency_ms),
                "--max-concurrency",
                str(ADAPTIVE_CAPACITY),
            ],
            env("fake"),
            ports["fake_capacity"],
            log_dir,
        ),
        **service_procs(py, ports, env, log_dir),
    }
    try:
        for p in procs.values():
            p.start()
        procs["fake"].wait_ready("/api/v1/models")
        for name in ("templates", "generator", "gateway"):
            procs[name].wait_ready("/health")
        await asyncio.sleep(3.0)  # consumer groups join (the gateway's events consumer starts at 'latest')
        token = access_token(key, f"bench-{run}", ttl=7200)
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
                # the reference tool on the same fake at the same latency, before the zero-latency run
                ours_rate = n / wall
                if args.llmdatagen_count > 0:
                    try:
                        t_wall, t_items, t_calls, t_model, t_delay = await run_llmdatagen(
                            fake_url, args.llmdatagen_count, log_dir
                        )
                        t_rate = t_items / t_wall
                        llmdatagen_line = (
                            f"llm-data-gen: N={args.llmdatagen_count} L={args.latency_ms}ms wall={t_wall:.2f} "
                            f"items={t_items} items_per_s={t_rate:.3f} speedup={ours_rate / t_rate:.1f} "
                            f"(ours: N={n} C={c} items_per_s={ours_rate:.1f}; theirs: {LLMDATAGEN_PKG} "
                            f"{LLMDATAGEN_EXAMPLE} model={t_model} chat_calls={t_calls}, sequential, {t_delay} ms between items)"
                        )
                    except LlmDataGenSkipped as e:
                        llmdatagen_line = f"llm-data-gen: skipped ({e})"
                    except (OSError, ValueError, KeyError, httpx.HTTPError) as e:
                        llmdatagen_line = f"llm-data-gen: skipped ({type(e).__name__}: {e})"
                else:
                    llmdatagen_line = "llm-data-gen: skipped (--llmdatagen-count 0)"
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
            fresh = Proc(
                "generator_adaptive",
                [py, "-m", "llmts_generator"],
                env(
                    "generator",
                    GENERATOR_PORT=str(ports["generator"]),
                    OPENROUTER_BASE_URL=f"http://127.0.0.1:{ports['fake_capacity']}/api/v1",
                ),
                ports["generator"],
                log_dir,
            )
            adaptive_line = await run_adaptive(client, gateway, token, template_id, procs, fresh, args)
            print(llmdatagen_line, flush=True)
            print(adaptive_line, flush=True)
            return (
                f"generation: N={n} L={args.latency_ms}ms C={c} wall={wall:.2f} ideal={ideal:.2f} "
                f"ratio={wall / ideal:.3f} items_per_s={rate:.1f} cpu_ms_per_item={cpu_ms:.2f}"
            )
    finally:
        await stop_stack(procs, jwks, "gen", run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--zero-concurrency", type=int, default=32, help="job concurrency of the zero-latency run"
    )
    parser.add_argument(
        "--llmdatagen-count",
        type=int,
        default=20,
        help="items for the llm-data-gen comparison run at the same latency (0 = skip it)",
    )
    args = parser.parse_args()
    line = asyncio.run(main_async(args))
    print(line, flush=True)


if __name__ == "__main__":
    main()
