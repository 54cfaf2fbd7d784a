"""Render guard: the generator's /health latency while one client renders pathological templates in a loop.

    uv run python bench/bench_render_guard.py                 # 12 s per isolation mode
    uv run python bench/bench_render_guard.py --seconds 20 --modes process

Starts the real generator (``bootstrap`` + uvicorn) as a subprocess on its own database, consumer group and
commands topic (Kafka and the Mongo-wire server must be up; nothing is published), with tokens signed by a key
of this run. One client posts ``POST /preview`` with a pathological user prompt back to back, alternating:

* ``tojson``: the issue's ~600-byte prompt (``{% set x=[1]*1000000 %}`` then ``{% set y=x|tojson %}`` × 24);
* ``compare``: ``{% set y = x == x %}`` × 2000 on the same list: no filter, loop or call, and compiling it takes
  seconds, so only the hard deadline stops it.

Meanwhile a second client GETs ``/health`` every 20 ms and records its latency. Every attack must be refused
with 422; ``attack_ms`` is the longest time one took (request sent → refusal received).

One line per mode (``--modes process,thread``: the worker-process pool and the in-process thread variant), and
last, for the first mode (the service default, ``process``), exactly:
``render-guard: health_p99_ms=<…> attack_ms=<…>`` (targets: p99 ≤ 50 ms, attacks refused within 1.5 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from joserfc.jwk import OKPKey

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.net import free_port  # noqa: E402
from tests.support.tokens import access_token, signing_key, verifier_for  # noqa: E402

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
MONGO_URL = os.environ.get("MONGO_URL", "mongodb://127.0.0.1:27017")
ATTACKS = {
    "tojson": "{% set x=[1]*1000000 %}" + "{% set y=x|tojson %}" * 24,
    "compare": "{% set x = [1] * 1000000 %}" + "{% set y = x == x %}" * 2000,
}
HEALTH_EVERY_S = 0.02


def _serve(port: int, isolation: str, run_id: str) -> None:
    """The child: the real generator app on ``port`` (its own db, group and topic), trusting the run's key."""
    import uvicorn

    from llmts_generator.bootstrap import bootstrap
    from llmts_generator.settings import GeneratorSettings

    key = OKPKey.import_key(json.loads(os.environ["BENCH_RENDER_GUARD_JWK"]))
    settings = GeneratorSettings(
        mongo_url=MONGO_URL,
        mongo_db=f"llmts_bench_render_guard_{run_id}",
        kafka_bootstrap_servers=KAFKA,
        kafka_group_id=f"llmts-bench-render-guard-{run_id}",
        kafka_client_id=f"bench-render-guard-{run_id}",
        commands_topic=f"bench.render-guard.commands.{run_id}",
        render_isolation=isolation,
        log_json=False,
    )
    app, _ = bootstrap(settings, verifier=verifier_for(key), configure_process=False)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _preview_body(user_prompt: str) -> dict[str, Any]:
    request = {
        "job_id": uuid.uuid4().hex,
        "user_id": "bench-attacker",
        "template": {
            "id": "tpl-bench",
            "version": 1,
            "name": "attack",
            "owner_id": "bench-attacker",
            "output_format": "text",
            "prompts": {"system": "s", "user": user_prompt},
            "validation": {"mode": "none", "rules": []},
        },
        "model": {"provider": "ollama", "id": "qwen2.5:0.5b"},
        "count": 3,
        "requested_at": "2026-01-01T00:00:00Z",
    }
    return {"request": request, "items": 3}


async def _wait_healthy(base: str, proc: subprocess.Popen[bytes], within: float = 90) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=base, timeout=2) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("the generator exited during start-up")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/health")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError("the generator did not start")


async def _attack(base: str, headers: dict[str, str], stop: asyncio.Event) -> dict[str, list[float]]:
    took: dict[str, list[float]] = {name: [] for name in ATTACKS}
    async with httpx.AsyncClient(base_url=base, timeout=60, headers=headers) as client:
        ok = await client.post("/preview", json=_preview_body("hello {{ index }}"))  # workers warm
        assert ok.status_code == 200, ok.text
        while not stop.is_set():
            for name, source in ATTACKS.items():
                start = time.perf_counter()
                resp = await client.post("/preview", json=_preview_body(source))
                took[name].append((time.perf_counter() - start) * 1000)
                if resp.status_code != 422:
                    raise RuntimeError(f"attack {name} answered {resp.status_code}: {resp.text[:300]}")
    return took


async def _probe(base: str, stop: asyncio.Event) -> list[float]:
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        while not stop.is_set():
            start = time.perf_counter()
            resp = await client.get("/health")
            latencies.append((time.perf_counter() - start) * 1000)
            assert resp.status_code == 200
            await asyncio.sleep(HEALTH_EVERY_S)
    return latencies


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _start(port: int, isolation: str, run_id: str, key: OKPKey) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BENCH_RENDER_GUARD_JWK": json.dumps(key.as_dict(private=False))}
    argv = [sys.executable, __file__, "--serve", str(port), "--isolation", isolation, "--run-id", run_id]
    return subprocess.Popen(argv, env=env, cwd=ROOT)


async def _measure(isolation: str, seconds: float, key: OKPKey) -> tuple[float, float, str]:
    run_id = uuid.uuid4().hex[:10]
    port = free_port()
    proc = _start(port, isolation, run_id, key)
    base = f"http://127.0.0.1:{port}"
    try:
        await _wait_healthy(base, proc)
        headers = {"Authorization": f"Bearer {access_token(key, 'bench-attacker')}"}
        stop = asyncio.Event()
        attack = asyncio.create_task(_attack(base, headers, stop))
        await asyncio.sleep(1.0)  # the first attack is under way
        probe = asyncio.create_task(_probe(base, stop))
        await asyncio.sleep(seconds)
        stop.set()
        latencies, took = await probe, await attack
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
        if proc.poll() is None:
            proc.kill()
        await _drop_database(f"llmts_bench_render_guard_{run_id}")
    worst = max(max(v) for v in took.values() if v)
    detail = " ".join(
        f"{name}_n={len(v)} {name}_median_ms={statistics.median(v):.0f} {name}_max_ms={max(v):.0f}"
        for name, v in took.items()
        if v
    )
    line = (
        f"isolation={isolation} health_n={len(latencies)} health_p50_ms={_p(latencies, 0.5):.1f} "
        f"health_p99_ms={_p(latencies, 0.99):.1f} health_max_ms={max(latencies):.1f} {detail}"
    )
    return _p(latencies, 0.99), worst, line


async def _drop_database(name: str) -> None:
    from llmts_common.mongo import create_client

    client = create_client(MONGO_URL)
    try:
        await client.drop_database(name)  # this run's own database only
    finally:
        await client.close()


async def main(seconds: float, modes: list[str]) -> None:
    key = signing_key()
    results = []
    for isolation in modes:
        p99, attack_ms, line = await _measure(isolation, seconds, key)
        print(line, flush=True)
        results.append((p99, attack_ms))
    p99, attack_ms = results[0]
    print(f"render-guard: health_p99_ms={p99:.1f} attack_ms={attack_ms:.0f}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="attack duration per mode")
    parser.add_argument(
        "--modes", default="process,thread", help="render isolations to measure, first = reported"
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--isolation", default="process", help=argparse.SUPPRESS)
    parser.add_argument("--run-id", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve, args.isolation, args.run_id)
    else:
        asyncio.run(main(args.seconds, [m.strip() for m in args.modes.split(",") if m.strip()]))
