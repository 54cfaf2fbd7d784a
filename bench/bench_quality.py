"""Dataset-quality benchmark (issue 18): the LLM judge, near-duplicate control and samplers, through the whole stack.

A stack of its own (fake OpenRouter at L = ``--latency-ms`` in its quality mode — ``tests/fakes/quality.py``: a
share ``--near-dup-share`` of item answers nearly repeat an earlier one, a share ``--low-score-share`` of judged
items get the lowest scores —, templates, generator, gateway; databases, groups and topics carry this run's id: see
``bench_generation.stack_env``). One user, one template family (a 30-word review per item, a ``tone`` category
sampler with weights 2:1:1 used in the prompt), N items each, same seed, in this order:

1. **base** — no judge, no near-duplicate control;
2. **near** — ``validation.near_duplicates {fields: [text], threshold: 0.8}``: near-duplicates repaired/regenerated;
3. **judge** — the template's judge (on the fake: another model id) scores every item, ``accept`` refuses the
   low-scoring ones (rejected, reason ``judge``, regenerated);
4. **base** again: the base wall is the mean of the two (the shared machine and database drift during a run).

Figures (printed last, one line):

- ``judge_wall_ratio`` = wall(judge) / wall(base), each from the 202 to the terminal event on the WebSocket;
- ``near_dup_rate`` = the near run's diversity report (``GET /history/{id}``): share of accepted items that still
  have a near-duplicate among the accepted ones (the base run's is printed in the detail line for contrast);
- ``dedup_overhead`` = wall(near) / wall(base) − 1;
- ``sampler_tokens`` = tokens the fake billed during the base run − tokens of the base job's own attempts: whatever
  else was spent (a model asked to produce the sampled columns would show here); samplers draw locally, so it is 0 —
  measured, not assumed; the detail line also checks that every item carries its sampled ``tone``;
- ``category_max_dev_pp`` = the base run's diversity report: largest |share − target| of a ``tone`` value, in points.
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

from bench_economy import run_job
from bench_generation import Proc, call_timing, jwks_app, service_procs, stack_env, stop_stack

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.server import RunningFake  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from tests.support.tokens import access_token, signing_key  # noqa: E402

SEED = 20_261_207
JUDGE_MODEL = "meta-llama/llama-3.3-70b-instruct"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "text": {"type": "string"}},
    "required": ["title", "text"],
    "additionalProperties": False,
}
TONES = {"sampler": "category", "values": ["formal", "friendly", "terse"], "weights": [2, 1, 1]}
BASE: dict[str, Any] = {
    "name": "bench quality reviews",
    "prompts": {
        "system": "You write short product reviews.",
        "user": "Write review {{ index }} in a {{ tone }} tone.",
    },
    "schema": SCHEMA,
    "variables": {"tone": TONES},
    "validation": {"mode": "strict", "rules": []},
    "model": {"provider": "openrouter", "id": "openai/gpt-4o-mini"},
}
JUDGE: dict[str, Any] = {
    "model": {"provider": "openrouter", "id": JUDGE_MODEL},
    "rubric": "Is the review specific, useful and in the asked tone?",
    "scores": {"usefulness": [1, 5], "tone": [1, 5]},
    "accept": "usefulness >= 3 and tone >= 3",
}
NEAR = {"fields": ["text"], "threshold": 0.8}


def processes(
    py: str, ports: dict[str, int], env: Any, log_dir: Path, args: argparse.Namespace
) -> dict[str, Proc]:
    fake = [
        *("-m", "tests.fakes.openrouter", "--port", str(ports["fake"]), "--latency-ms", str(args.latency_ms)),
        *("--jitter-ms", str(args.jitter_ms), "--seed", "7"),
        *("--rate-near-duplicate", str(args.near_dup_share), "--rate-low-score", str(args.low_score_share)),
    ]
    ceiling = "openrouter=256"  # the job's calls and its judge's at once, no ramp-up: a fixed, ample capacity
    generator = {"PROVIDER_CONCURRENCY": ceiling, "PROVIDER_CONCURRENCY_INITIAL": ceiling}
    return {
        "fake": Proc("fake_openrouter", [py, *fake], env("fake"), ports["fake"], log_dir),
        **service_procs(py, ports, env, log_dir, generator=generator),
    }


async def template(client: httpx.AsyncClient, name: str, **extra: Any) -> str:
    r = await client.post("/templates", json={**BASE, "name": f"{BASE['name']} {name}", **extra})
    r.raise_for_status()
    return str(r.json()["id"])


async def history(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    r = await client.get(f"/history/{job_id}", params={"attempts_limit": 0})
    r.raise_for_status()
    body: dict[str, Any] = r.json()
    return body


async def fake_tokens(fake: str) -> int:
    async with httpx.AsyncClient(base_url=fake, timeout=10) as c:
        stats = (await c.get("/_fake/stats")).json()
    return int(stats["prompt_tokens"]) + int(stats["completion_tokens"])


async def sampled_everywhere(client: httpx.AsyncClient, job_id: str, n: int) -> bool:
    r = await client.get(f"/generate/{job_id}/result", params={"limit": n})
    r.raise_for_status()
    items = r.json()["items"]
    return len(items) == n and all((i.get("provenance") or {}).get("sampled", {}).get("tone") for i in items)


async def quality_line(
    client: httpx.AsyncClient, gateway: str, token: str, fake: str, args: argparse.Namespace
) -> str:
    n, c = args.count, args.concurrency
    base_id = await template(client, "base")
    judge_id = await template(client, "judge", judge=JUDGE)
    near_id = await template(
        client, "near", validation={"mode": "strict", "rules": [], "near_duplicates": NEAR}
    )
    common = {"count": n, "concurrency": c, "seed": SEED, "cache": "off"}
    await run_job(
        client, gateway, token, {**common, "template_id": base_id, "count": 2 * c, "seed": 1}
    )  # warm-up
    before = await fake_tokens(fake)
    base_wall, base = await run_job(client, gateway, token, {**common, "template_id": base_id})
    spent = await fake_tokens(fake) - before
    near_wall, near = await run_job(client, gateway, token, {**common, "template_id": near_id})
    judge_wall, judged = await run_job(client, gateway, token, {**common, "template_id": judge_id})
    again_wall, again = await run_job(client, gateway, token, {**common, "template_id": base_id})
    base_walls, base_wall = (base_wall, again_wall), (base_wall + again_wall) / 2  # drift: before and after
    for name, j in (("base", base), ("judge", judged), ("near", near), ("base again", again)):
        if j["status"] != "completed" or j["counts"]["succeeded"] != n:
            raise RuntimeError(f"{name} run: {j['status']} {j['counts']}")
    base_h, judge_h, near_h = [await history(client, j["job_id"]) for j in (base, judged, near)]
    recorded = int(base["usage"]["prompt_tokens"]) + int(base["usage"]["completion_tokens"])
    sampler_tokens = spent - recorded
    categories = (base_h.get("diversity") or {}).get("categories") or {}
    max_dev = max((float(col["max_dev_pp"]) for col in categories.values()), default=float("nan"))
    near_rate = float((near_h.get("diversity") or {}).get("near_duplicate_rate", float("nan")))
    judge_usage = judged.get("judge_usage") or {}
    spans = []
    for name, j in (("base", base), ("near", near), ("judge", judged), ("base again", again)):
        mean, first, last = await call_timing(client, j["job_id"])
        spans.append(f"{name}: calls {last - first:.2f}s (mean {mean:.3f}s)")
    print("quality spans: " + " | ".join(spans), flush=True)
    print(
        f"quality detail: L={args.latency_ms}ms+U(0,{args.jitter_ms}) C={c} shares: near-dup={args.near_dup_share} "
        f"low-score={args.low_score_share} | base: walls={base_walls[0]:.2f}s,{base_walls[1]:.2f}s "
        f"calls={base['counts']['attempts']} "
        f"near_dup_rate={(base_h.get('diversity') or {}).get('near_duplicate_rate')} tone={categories} "
        f"sampled_on_every_item={await sampled_everywhere(client, base['job_id'], n)} | judge: wall={judge_wall:.2f}s "
        f"rejected={judged['counts']['rejected']} judge_calls={judge_usage.get('calls')} "
        f"judge_cost=${judge_usage.get('cost_usd')} of ${judged['usage']['cost_usd']} | near: wall={near_wall:.2f}s "
        f"turned_away={near.get('near_duplicates_rejected')} rejected={near['counts']['rejected']} "
        f"calls={near['counts']['attempts']} | judge history judge_usage={judge_h.get('judge_usage')}",
        flush=True,
    )
    return (
        f"quality: N={n} judge_wall_ratio={judge_wall / base_wall:.3f} near_dup_rate={near_rate:.4f} "
        f"dedup_overhead={near_wall / base_wall - 1:.3f} sampler_tokens={sampler_tokens} "
        f"category_max_dev_pp={max_dev:.2f}"
    )


async def main_async(args: argparse.Namespace) -> str:
    run = uuid.uuid4().hex[:8]
    log_dir = ROOT / "var" / "log" / f"bench-quality-{run}"
    log_dir.mkdir(parents=True, exist_ok=True)
    key = signing_key(f"bench-{run}")
    jwks = RunningFake(jwks_app(key)).start()
    ports = {n: free_port() for n in ("fake", "templates", "generator", "gateway")}
    env = stack_env("qual", run, ports, jwks.base_url)
    procs = processes(sys.executable, ports, env, log_dir, args)
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
        t0 = time.perf_counter()
        async with httpx.AsyncClient(base_url=gateway, headers=headers, timeout=120) as client:
            line = await quality_line(client, gateway, token, procs["fake"].url, args)
        print(f"logs: {log_dir} ({time.perf_counter() - t0:.0f}s)", flush=True)
        return line
    finally:
        await stop_stack(procs, jwks, "qual", run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument(
        "--latency-ms", type=int, default=1000, help="the fake's answer time (a real model's)"
    )
    parser.add_argument(
        "--jitter-ms", type=int, default=300, help="+ uniform(0, jitter): answers vary, as real ones"
    )
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--near-dup-share", type=float, default=0.02)
    parser.add_argument("--low-score-share", type=float, default=0.03)
    args = parser.parse_args()
    print(asyncio.run(main_async(args)), flush=True)


if __name__ == "__main__":
    main()
