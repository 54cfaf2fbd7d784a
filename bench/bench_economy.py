"""Economy benchmark (issue 17): what re-running and extending a job costs, through the whole stack.

A stack of its own (fake OpenRouter at L = ``--latency-ms``, templates, generator, gateway; every database,
consumer group and topic carries this run's id: ``bench_generation.stack_env``), one user, one template:

1. a job of N items with a fixed seed (cold cache): its wall from the 202 to the terminal event and its cost;
2. the same job again (same template, model, parameters and seed, ``cache: use``): its cost and wall;
3. ``POST /generate/{id}/extend {count: N}`` on the first job: what the new round cost (the job's cost after −
   before);
4. ``POST /generate/preview`` of an N=200 job with ``estimate: "sample"`` (a real sample of 5 items, charged), then
   that job: the sampled estimate against the job's cost.

Prints ``cache: N=… rerun_cost_usd=… rerun_time_ratio=<rerun wall / first wall> extend_cost_ratio=<cost of +N /
cost of the first N>`` (targets: rerun cost 0, time ratio ≤ 0.05, extend ratio ≤ 1.02) and ``estimate: N=200
estimate_usd=… actual_usd=… error=<|estimate − actual| / actual>`` (target ≤ 0.15) last; ``--lines`` picks the
lines. Dedup is off, as in ``bench_generation``: the fake derives its answer from a call counter, so concurrent calls can get identical JSON
(a fake artefact), which would add repair calls at random to either run and blur the cost comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench_generation import Proc, drop_run_databases, jwks_app, stack_env, watch_terminal

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.stack import GENEROUS_QUOTAS  # noqa: E402
from tests.fakes.server import RunningFake  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from tests.support.tokens import access_token, signing_key  # noqa: E402

TERMINAL = ("completed", "completed_with_errors", "stopped", "failed", "cancelled")
SEED = 20_261_207
TEMPLATE: dict[str, Any] = {
    "name": "bench economy reviews",
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
}


async def job(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    r = await client.get(f"/generate/{job_id}")
    r.raise_for_status()
    body: dict[str, Any] = r.json()
    return body


async def run_job(
    client: httpx.AsyncClient, gateway: str, token: str, body: dict[str, Any]
) -> tuple[float, dict[str, Any]]:
    """POST /generate, then the WebSocket until the terminal event: (seconds from the 202 to it, the job)."""
    r = await client.post("/generate", json=body)
    r.raise_for_status()
    t0 = time.perf_counter()
    job_id = r.json()["job_id"]
    await watch_terminal(gateway, token, job_id)
    wall = time.perf_counter() - t0
    return wall, await job(client, job_id)


async def extend(client: httpx.AsyncClient, job_id: str, count: int) -> tuple[float, dict[str, Any]]:
    """POST /generate/{id}/extend, then poll until the new round ended: (seconds, the job)."""
    r = await client.post(f"/generate/{job_id}/extend", json={"count": count})
    r.raise_for_status()
    t0 = time.perf_counter()
    wanted = int(r.json()["round"])
    while True:
        current = await job(client, job_id)
        if int(current.get("round") or 1) == wanted and current["status"] in TERMINAL:
            return time.perf_counter() - t0, current
        await asyncio.sleep(0.2)


def processes(py: str, ports: dict[str, int], env: Any, log_dir: Path, latency_ms: int) -> dict[str, Proc]:
    fake_args = [
        "-m",
        "tests.fakes.openrouter",
        "--port",
        str(ports["fake"]),
        "--latency-ms",
        str(latency_ms),
    ]
    return {
        "fake": Proc("fake_openrouter", [py, *fake_args], env("fake"), ports["fake"], log_dir),
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
            env("gateway", GATEWAY_PORT=str(ports["gateway"]), **GENEROUS_QUOTAS),
            ports["gateway"],
            log_dir,
        ),
    }


async def cache_line(client: httpx.AsyncClient, gateway: str, token: str, args: argparse.Namespace) -> str:
    r = await client.post("/templates", json=TEMPLATE)
    r.raise_for_status()
    template_id = r.json()["id"]
    n, c = args.count, args.concurrency
    # warm-up on another seed (connections, consumer assignment): not cached for the runs below
    await run_job(client, gateway, token, {"template_id": template_id, "count": 32, "concurrency": c})
    body = {"template_id": template_id, "count": n, "concurrency": c, "dedup": False, "seed": SEED}
    first_wall, first = await run_job(client, gateway, token, body)
    rerun_wall, rerun = await run_job(client, gateway, token, body)
    before = float(first["usage"]["cost_usd"])
    extend_wall, extended = await extend(client, first["job_id"], n)
    for name, j in (("first", first), ("rerun", rerun), ("extend", extended)):
        assert j["status"] == "completed", (name, j["status"], j.get("error"))
    extend_cost = float(extended["usage"]["cost_usd"]) - before
    counts = rerun["counts"]
    print(
        f"cache detail: L={args.latency_ms}ms C={c} first: wall={first_wall:.2f}s cost=${before:.6f} "
        f"calls={first['counts']['attempts']} | rerun: wall={rerun_wall:.3f}s cost=${rerun['usage']['cost_usd']} "
        f"hits={counts['cache_hits']} misses={counts['cache_misses']} saved=${rerun['saved_cost_usd']:.6f} | "
        f"extend +{n}: wall={extend_wall:.2f}s cost=${extend_cost:.6f} "
        f"items={extended['counts']['succeeded']}",
        flush=True,
    )
    return (
        f"cache: N={n} rerun_cost_usd={float(rerun['usage']['cost_usd']):.6f} "
        f"rerun_time_ratio={rerun_wall / first_wall:.4f} extend_cost_ratio={extend_cost / before:.4f}"
    )


async def estimate_line(client: httpx.AsyncClient, gateway: str, token: str, args: argparse.Namespace) -> str:
    """``estimate: "sample"`` on the preview of an N-item job (a real sample of min(5, N) items), then the job
    itself: the sampled estimate against what the job cost."""
    r = await client.post("/templates", json=TEMPLATE)
    r.raise_for_status()
    n = args.estimate_count
    body = {
        "template_id": r.json()["id"],
        "count": n,
        "concurrency": args.concurrency,
        "cache": "off",
        "dedup": False,
    }
    t0 = time.perf_counter()
    r = await client.post("/generate/preview", json={**body, "estimate": "sample"})
    r.raise_for_status()
    estimate = r.json()["estimate"]
    sample_wall = time.perf_counter() - t0
    estimate_usd = float(estimate["total"]["expected"])
    wall, actual = await run_job(client, gateway, token, body)
    assert actual["status"] == "completed", (actual["status"], actual.get("error"))
    actual_usd = float(actual["usage"]["cost_usd"])
    sample = estimate["sample"]
    print(
        f"estimate detail: sample k={sample['size']} valid={sample['valid']} calls={sample['calls']} "
        f"cost=${sample['cost_usd']:.6f} wall={sample_wall:.2f}s range=[{estimate['total']['low']:.6f}, "
        f"{estimate['total']['high']:.6f}] tokens_guess=[{_guess(estimate, 'low')}, {_guess(estimate, 'high')}] | "
        f"job N={n}: wall={wall:.2f}s calls={actual['counts']['attempts']} cost=${actual_usd:.6f}",
        flush=True,
    )
    error = abs(estimate_usd - actual_usd) / actual_usd
    return f"estimate: N={n} estimate_usd={estimate_usd:.6f} actual_usd={actual_usd:.6f} error={error:.4f}"


def _guess(estimate: dict[str, Any], end: str) -> str:
    total = (estimate.get("tokens_estimate") or {}).get("total") or {}
    return "n/a" if total.get(end) is None else f"{float(total[end]):.6f}"


async def main_async(args: argparse.Namespace) -> str:
    run = uuid.uuid4().hex[:8]
    log_dir = ROOT / "var" / "log" / f"bench-economy-{run}"
    log_dir.mkdir(parents=True, exist_ok=True)
    key = signing_key(f"bench-{run}")
    jwks = RunningFake(jwks_app(key)).start()
    ports = {n: free_port() for n in ("fake", "templates", "generator", "gateway")}
    env = stack_env("eco", run, ports, jwks.base_url)
    procs = processes(sys.executable, ports, env, log_dir, args.latency_ms)
    try:
        for p in procs.values():
            p.start()
        procs["fake"].wait_ready("/api/v1/models")
        for name in ("templates", "generator", "gateway"):
            procs[name].wait_ready("/health")
        await asyncio.sleep(3.0)  # consumer groups join (the gateway's events consumer starts at 'latest')
        token = access_token(key, f"bench-{run}", ttl=7200)
        gateway = procs["gateway"].url
        headers = {"Authorization": f"Bearer {token}"}
        runs = {"cache": cache_line, "estimate": estimate_line}
        lines = []
        async with httpx.AsyncClient(base_url=gateway, headers=headers, timeout=300) as client:
            for name in args.lines.split(","):
                lines.append(await runs[name.strip()](client, gateway, token, args))
        print(f"logs: {log_dir}", flush=True)
        return "\n".join(lines)
    finally:
        for p in reversed(list(procs.values())):
            p.stop()
        jwks.stop()
        await drop_run_databases("eco", run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument(
        "--latency-ms", type=int, default=1000, help="the fake's answer time (a real model's)"
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--estimate-count", type=int, default=200, help="N of the estimate line")
    parser.add_argument("--lines", default="cache,estimate", help="which figure lines to measure, in order")
    args = parser.parse_args()
    print(asyncio.run(main_async(args)), flush=True)


if __name__ == "__main__":
    main()
