"""Economy benchmark (issue 17): what re-running and extending a job costs, through the whole stack.

A stack of its own (fake OpenRouter at L = ``--latency-ms``, templates, generator, gateway; every database,
consumer group and topic carries this run's id: ``bench_generation.stack_env``), one user, one template:

1. a job of N items with a fixed seed (cold cache): its wall from the 202 to the terminal event and its cost;
2. the same job again (same template, model, parameters and seed, ``cache: use``): its cost and wall;
3. ``POST /generate/{id}/extend {count: N}`` on the first job: what the new round cost (the job's cost after −
   before);
4. batch mode: a sync job of 1000 items and a batch job of 1000 items (``mode: "batch"``) on the fake OpenAI-compatible
   server (files + batches endpoints, lines at half price); the generator is killed (SIGKILL) while the batch waits
   at the provider and started again;
5. ``POST /generate/preview`` of an N=200 job with ``estimate: "sample"`` (a real sample of 5 items, charged), then
   that job: the sampled estimate against the job's cost.

Prints ``cache: N=… rerun_cost_usd=… rerun_time_ratio=<rerun wall / first wall> extend_cost_ratio=<cost of +N /
cost of the first N>`` (targets: rerun cost 0, time ratio ≤ 0.05, extend ratio ≤ 1.02), ``batch: N=1000
cost_ratio=<batch cost / sync cost> exact=<true|false> resubmitted_after_kill=<lines the fake saw submitted twice>``
(targets: ≤ 0.52, true, 0) and ``estimate: N=200
estimate_usd=… actual_usd=… error=<|estimate − actual| / actual>`` (target ≤ 0.15) last; ``--lines`` picks the
lines. Dedup is off, as in ``bench_generation``: the fake derives its answer from a call counter, so concurrent calls can get identical JSON
(a fake artefact), which would add repair calls at random to either run and blur the cost comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench_generation import Proc, jwks_app, service_procs, stack_env, stop_stack, watch_terminal

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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
BATCH_MODEL = {"provider": "openai-compatible", "id": "gpt-4o-mini"}


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


def processes(
    py: str, ports: dict[str, int], env: Any, log_dir: Path, latency_ms: int, batch_latency_ms: int = 200
) -> dict[str, Proc]:
    oc_args = ["-m", "tests.fakes.openai_compat", "--port", str(ports["fake_oc"])]
    oc_args += ["--latency-ms", str(batch_latency_ms), "--rate-invalid-json", "0.02"]
    batch_env = {  # the batch line's provider: the fake OpenAI-compatible server (files + batches endpoints)
        "OPENAI_COMPATIBLE_BASE_URL": f"http://127.0.0.1:{ports['fake_oc']}/v1",
        "OPENAI_COMPATIBLE_PRICES": json.dumps({BATCH_MODEL["id"]: {"prompt": 0.15, "completion": 0.6}}),
        "BATCH_POLL_INITIAL_SECONDS": "0.5",
        "BATCH_POLL_MAX_SECONDS": "2",
    }
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
        "fake_oc": Proc("fake_openai_compat", [py, *oc_args], env("fake_oc"), ports["fake_oc"], log_dir),
        **service_procs(py, ports, env, log_dir, generator=batch_env),
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


async def batch_line(
    client: httpx.AsyncClient, gateway: str, token: str, args: argparse.Namespace, *, procs: dict[str, Proc]
) -> str:
    """A sync job of N and a batch job of N on the fake OpenAI-compatible server (2 % invalid answers, repaired);
    the generator is killed (SIGKILL) while the batch waits at the provider and started again: the batch job must
    end with exactly N items, and the fake must have seen no line submitted twice."""
    r = await client.post(
        "/templates", json={**TEMPLATE, "name": "bench economy batch", "model": BATCH_MODEL}
    )
    r.raise_for_status()
    n = args.batch_count
    body = {"template_id": r.json()["id"], "count": n, "concurrency": args.concurrency, "dedup": False}
    body["cache"] = "off"
    sync_wall, sync_job = await run_job(client, gateway, token, body)
    assert sync_job["status"] == "completed", (sync_job["status"], sync_job.get("error"))
    async with httpx.AsyncClient(base_url=procs["fake_oc"].url, timeout=30) as fake:
        r = await fake.post("/_fake/config", json={"batch_start_delay_ms": args.batch_start_delay_ms})
        r.raise_for_status()
        r = await client.post("/generate", json={**body, "mode": "batch"})
        r.raise_for_status()
        t0 = time.perf_counter()
        job_id = r.json()["job_id"]
        for _ in range(1200):  # the batch is created at the provider
            if (await fake.get("/_fake/batches")).json()["batches"] >= 1:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # the batch id is in MongoDB; the batch waits at the provider
        generator = procs["generator"]
        assert generator.p is not None
        generator.p.kill()  # kill -9 mid-window
        generator.p.wait()
        killed_at = time.perf_counter() - t0
        generator.start()
        generator.wait_ready("/health")
        batch_job = await job(client, job_id)
        while batch_job["status"] not in TERMINAL:
            await asyncio.sleep(0.5)
            batch_job = await job(client, job_id)
        wall = time.perf_counter() - t0
        seen = (await fake.get("/_fake/batches")).json()
    sync_cost, batch_cost = float(sync_job["usage"]["cost_usd"]), float(batch_job["usage"]["cost_usd"])
    exact = batch_job["status"] == "completed" and int(batch_job["counts"]["succeeded"]) == n
    print(
        f"batch detail: sync: wall={sync_wall:.2f}s calls={sync_job['counts']['attempts']} cost=${sync_cost:.6f} | "
        f"batch: wall={wall:.2f}s killed at {killed_at:.1f}s status={batch_job['status']} "
        f"items={batch_job['counts']['succeeded']} attempts={batch_job['counts']['attempts']} "
        f"cost=${batch_cost:.6f} | fake: batches={seen['batches']} lines={seen['lines_submitted']} "
        f"distinct={seen['distinct_lines']}",
        flush=True,
    )
    return (
        f"batch: N={n} cost_ratio={batch_cost / sync_cost:.4f} exact={str(exact).lower()} "
        f"resubmitted_after_kill={seen['resubmitted_lines']}"
    )


def _guess(estimate: dict[str, Any], end: str) -> str:
    total = (estimate.get("tokens_estimate") or {}).get("total") or {}
    return "n/a" if total.get(end) is None else f"{float(total[end]):.6f}"


async def main_async(args: argparse.Namespace) -> str:
    run = uuid.uuid4().hex[:8]
    log_dir = ROOT / "var" / "log" / f"bench-economy-{run}"
    log_dir.mkdir(parents=True, exist_ok=True)
    key = signing_key(f"bench-{run}")
    jwks = RunningFake(jwks_app(key)).start()
    ports = {n: free_port() for n in ("fake", "fake_oc", "templates", "generator", "gateway")}
    env = stack_env("eco", run, ports, jwks.base_url)
    procs = processes(sys.executable, ports, env, log_dir, args.latency_ms, args.batch_latency_ms)
    try:
        for p in procs.values():
            p.start()
        procs["fake"].wait_ready("/api/v1/models")
        procs["fake_oc"].wait_ready("/v1/models")
        for name in ("templates", "generator", "gateway"):
            procs[name].wait_ready("/health")
        await asyncio.sleep(3.0)  # consumer groups join (the gateway's events consumer starts at 'latest')
        token = access_token(key, f"bench-{run}", ttl=7200)
        gateway = procs["gateway"].url
        headers = {"Authorization": f"Bearer {token}"}
        runs = {
            "cache": cache_line,
            "estimate": estimate_line,
            "batch": functools.partial(batch_line, procs=procs),
        }
        lines = []
        async with httpx.AsyncClient(base_url=gateway, headers=headers, timeout=300) as client:
            for name in args.lines.split(","):
                lines.append(await runs[name.strip()](client, gateway, token, args))
        print(f"logs: {log_dir}", flush=True)
        return "\n".join(lines)
    finally:
        await stop_stack(procs, jwks, "eco", run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument(
        "--latency-ms", type=int, default=1000, help="the fake's answer time (a real model's)"
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--estimate-count", type=int, default=200, help="N of the estimate line")
    parser.add_argument("--batch-count", type=int, default=1000, help="N of the batch line")
    parser.add_argument(
        "--batch-latency-ms", type=int, default=200, help="the fake OpenAI-compatible server's answer time"
    )
    parser.add_argument(
        "--batch-start-delay-ms",
        type=int,
        default=8000,
        help="how long the fake keeps a batch queued (the generator is killed within that window)",
    )
    parser.add_argument(
        "--lines", default="cache,batch,estimate", help="which figure lines to measure, in order"
    )
    args = parser.parse_args()
    print(asyncio.run(main_async(args)), flush=True)


if __name__ == "__main__":
    main()
