"""Gateway latency under a fixed load: `make bench-gateway` (or `uv run python bench/bench_gateway.py`).

Starts the whole stack (tests/e2e/stack.py) on the local Kafka + MongoDB-wire server, registers a user, then drives
an authenticated read endpoint (`GET /auth/session`: the gateway's own cost — edge middleware, JWT verified via
the JWKS, routing, response — with no upstream hop; `--path /auth/me` measures the forwarded path instead, which
adds the auth service and its MongoDB lookup) at a fixed arrival rate from a SECOND process on loopback: an open-loop
asyncio load generator on raw keep-alive HTTP/1.1 connections (latency is measured from each request's scheduled
send time, so a slow server cannot hide its queueing — no coordinated omission). The same generator then drives a
bare FastAPI endpoint served by uvicorn the same way (`uvicorn.run`, default loop/http, no access log) in the same
run. Prints, last:

    gateway: rps=<achieved> p50_ms=<…> p99_ms=<…> overhead_vs_bare=<gateway p99 / bare p99>
    gateway-forwarded: path=/templates/<id> rps=<…> p50_ms=<…> p99_ms=<…> cpu_ms_per_request=<…>

The last line is the forwarded path: an authenticated `GET /templates/<id>` (the bench creates a template first)
goes gateway → templates service → one MongoDB document read. Its `cpu_ms_per_request` is the CPU time (user +
system, from /proc/<pid>/stat before and after the measured window, warm-up excluded) that EVERY process of the
stack spent — the six services, the fakes and the MongoDB-wire server — divided by the requests served; the
`#` lines before it break it down per process (with each one's idle CPU over a quiet window for reference).
By default the run gets its own MongoDB-wire server (same launcher, scripts/infra.sh, on a free port and a data
dir under var/) so other users of the shared one do not show up in its CPU; `--shared-mongo` uses $MONGO_URL.

Targets (issue 9): p99 ≤ 25 ms at 200 rps; overhead ≤ 1.5×. Figures are printed, never asserted.
Options: --rate (200), --duration (20 s), --warmup (3 s), --path (/auth/session), --connections (32),
--shared-mongo, --only-forwarded (skip the /auth and bare runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# --- the load generator (runs in its own process: `--load`) -------------------------------------------------------


async def _connection(
    host: str,
    port: int,
    request: bytes,
    queue: asyncio.Queue[float | None],
    out: list[float],
    errors: list[str],
) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while True:
        scheduled = await queue.get()
        if scheduled is None:
            break
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            assert reader is not None
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            chunked = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
                elif name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
            if chunked:
                while True:
                    size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            elif length:
                await reader.readexactly(length)
            done = time.perf_counter()
            if status != 200:
                errors.append(str(status))
            out.append((done - scheduled) * 1000.0)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            errors.append(type(exc).__name__)
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _load(
    url: str, rate: float, duration: float, warmup: float, connections: int, headers: list[str]
) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive", *headers]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def phase(seconds: float) -> tuple[list[float], list[str], float]:
        queue: asyncio.Queue[float | None] = asyncio.Queue()
        out: list[float] = []
        errors: list[str] = []
        workers = [
            asyncio.create_task(_connection(host, port, request, queue, out, errors))
            for _ in range(connections)
        ]
        total = int(rate * seconds)
        start = time.perf_counter() + 0.05
        for i in range(total):
            at = start + i / rate
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait(at)
        for _ in workers:
            queue.put_nowait(None)
        await asyncio.gather(*workers)
        return out, errors, time.perf_counter() - start

    await phase(warmup)
    lat, errors, elapsed = await phase(duration)
    lat.sort()

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else float("nan")

    return {
        "requests": len(lat),
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:5],
        "rps": round(len(lat) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(lat[-1], 2) if lat else float("nan"),
        "mean_ms": round(statistics.fmean(lat), 2) if lat else float("nan"),
    }


def drive(url: str, args: argparse.Namespace, headers: list[str]) -> dict[str, object]:
    """Run the load generator in a second process and return its figures."""
    cmd = [
        sys.executable,
        __file__,
        "--load",
        url,
        "--rate",
        str(args.rate),
        "--duration",
        str(args.duration),
        "--warmup",
        str(args.warmup),
        "--connections",
        str(args.connections),
    ]
    for h in headers:
        cmd += ["--header", h]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=args.duration + args.warmup + 120, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


# --- CPU time per process (Linux /proc) ------------------------------------------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime, stime (fields 14, 15 of stat)


def listener_pid(port: int) -> int | None:
    """The pid of the process listening on 127.0.0.1/0.0.0.0:``port`` (via /proc/net/tcp socket inodes)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{cols[9]}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return None


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    out = {}
    for name, pid in pids.items():
        try:
            out[name] = cpu_seconds(pid)
        except OSError:
            out[name] = float("nan")
    return out


def start_private_mongo() -> tuple[str, dict[str, str]]:
    """A MongoDB-wire server of this run only (scripts/infra.sh on a free port, data under var/); its env to stop."""
    from tests.support.net import free_port

    port = free_port()
    env = dict(os.environ, MONGO_PORT=str(port), LLMTS_VAR_DIR=str(ROOT / "var" / f"bench-mongo-{port}"))
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "infra.sh"), "start", "mongo"],
        check=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    return f"mongodb://127.0.0.1:{port}", env


def stop_private_mongo(env: dict[str, str]) -> None:
    import shutil

    subprocess.run(
        ["bash", str(ROOT / "scripts" / "infra.sh"), "stop", "mongo"], cwd=ROOT, env=env, timeout=120
    )
    shutil.rmtree(env["LLMTS_VAR_DIR"], ignore_errors=True)


def measure_forwarded(
    url: str, args: argparse.Namespace, headers: list[str], pids: dict[str, int]
) -> tuple[dict[str, object], dict[str, float], dict[str, float]]:
    """Warm up, then drive ``url`` with CPU snapshots of every process around the measured window only.
    Returns the load figures, CPU ms per request per process, and idle CPU ms per second per process."""
    quiet = 3.0
    idle0, t0 = cpu_snapshot(pids), time.monotonic()
    time.sleep(quiet)
    idle1, t1 = cpu_snapshot(pids), time.monotonic()
    idle = {n: (idle1[n] - idle0[n]) * 1000.0 / (t1 - t0) for n in pids}
    drive(url, argparse.Namespace(**{**vars(args), "duration": args.warmup, "warmup": 0.0}), headers)
    before = cpu_snapshot(pids)
    figures = drive(url, argparse.Namespace(**{**vars(args), "warmup": 0.0}), headers)
    after = cpu_snapshot(pids)
    served = max(int(figures["requests"]), 1)  # type: ignore[call-overload]
    per_request = {n: (after[n] - before[n]) * 1000.0 / served for n in pids}
    return figures, per_request, idle


# --- the bare endpoint (its own process: `--bare PORT`) -------------------------------------------------------------


def serve_bare(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/me")
    async def me() -> dict[str, str]:
        return {
            "id": "0" * 32,
            "email": "bare@example.com",
            "name": "bare",
            "created_at": "2026-01-01T00:00:00Z",
        }

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--path", default="/auth/session")
    parser.add_argument(
        "--shared-mongo", action="store_true", help="use $MONGO_URL instead of a private server"
    )
    parser.add_argument(
        "--only-forwarded", action="store_true", help="only the forwarded GET /templates/<id>"
    )
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--header", action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        figures = asyncio.run(
            _load(args.load, args.rate, args.duration, args.warmup, args.connections, args.header)
        )
        print(json.dumps(figures))
        return
    if args.bare:
        serve_bare(args.bare)
        return

    import httpx
    from tests.e2e.stack import new_stack
    from tests.support.net import free_port

    subprocess.run(["bash", str(ROOT / "scripts" / "infra.sh"), "up"], check=True, cwd=ROOT, timeout=300)
    mongo_env: dict[str, str] | None = None
    if not args.shared_mongo:
        os.environ["MONGO_URL"], mongo_env = start_private_mongo()
    mongo_port = urlsplit(os.environ.get("MONGO_URL", "mongodb://127.0.0.1:27017")).port or 27017
    stack = new_stack()
    bare_port = free_port()
    bare = subprocess.Popen(
        [sys.executable, __file__, "--bare", str(bare_port)], cwd=ROOT, env=dict(os.environ)
    )
    gw: dict[str, object] = {}
    base: dict[str, object] = {}
    try:
        stack.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{bare_port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        email, password = f"bench-{uuid.uuid4().hex[:8]}@example.com", "bench horse battery staple 42"
        with httpx.Client(base_url=stack.gateway, timeout=10) as c:
            assert c.post("/auth/register", json={"email": email, "password": password}).status_code == 201
            token = c.post("/auth/login", json={"email": email, "password": password}).json()["access_token"]
            bearer = {"Authorization": f"Bearer {token}"}
            assert c.get(args.path, headers=bearer).status_code == 200
            created = c.post(
                "/templates",
                headers=bearer,
                json={
                    "name": "bench template",
                    "description": "read by bench_gateway.py",
                    "output": {"format": "text"},
                    "prompts": {"system": "You write short answers.", "user": "Say hello to {{ who }}."},
                    "variables": {"who": "the bench"},
                },
            )
            assert created.status_code == 201, created.text
            template_path = f"/templates/{created.json()['id']}"
            assert c.get(template_path, headers=bearer).status_code == 200
        auth = [f"Authorization: Bearer {token}"]
        if not args.only_forwarded:
            gw = drive(stack.gateway + args.path, args, auth)
            base = drive(f"http://127.0.0.1:{bare_port}/me", args, auth)
        pids = {name: p.popen.pid for name, p in stack.procs.items() if p.popen is not None}
        mongo_pid = listener_pid(mongo_port)
        if mongo_pid is not None:
            pids["mongo"] = mongo_pid
        fwd, cpu, idle = measure_forwarded(stack.gateway + template_path, args, auth, pids)
    finally:
        bare.terminate()
        bare.wait(10)
        stack.stop()
        if mongo_env is not None:
            stop_private_mongo(mongo_env)
    if gw:
        print(f"bare   ({args.rate:.0f} rps offered, {args.duration:.0f} s): {json.dumps(base)}")
        print(
            f"gateway GET {args.path} ({args.rate:.0f} rps offered, {args.duration:.0f} s): {json.dumps(gw)}"
        )
        p50_ratio = float(gw["p50_ms"]) / max(float(base["p50_ms"]), 1e-9)  # type: ignore[arg-type]
        ratio = float(gw["p99_ms"]) / max(float(base["p99_ms"]), 1e-9)  # type: ignore[arg-type]
        print(f"overhead p50: {p50_ratio:.2f}x, p99: {ratio:.2f}x (targets: p99 <= 25 ms, overhead <= 1.5x)")
        print(
            f"gateway: rps={gw['rps']} p50_ms={gw['p50_ms']} p99_ms={gw['p99_ms']} overhead_vs_bare={ratio:.2f}"
        )
    print(
        f"# forwarded GET /templates/<id> ({args.rate:.0f} rps offered, {args.duration:.0f} s): {json.dumps(fwd)}"
    )
    print("# cpu per process: ms per request during the window | idle ms per second before it")
    for name in sorted(cpu, key=lambda n: -cpu[n]):
        print(f"#   {name:<16} {cpu[name]:7.3f} ms/req | idle {idle[name]:7.2f} ms/s  (pid {pids[name]})")
    total = sum(cpu.values())
    print(
        f"gateway-forwarded: path=/templates/<id> rps={fwd['rps']} p50_ms={fwd['p50_ms']} "
        f"p99_ms={fwd['p99_ms']} cpu_ms_per_request={total:.2f}"
    )


if __name__ == "__main__":
    main()
