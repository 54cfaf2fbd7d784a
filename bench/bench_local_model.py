"""Local-model benchmark (``make bench-local-model``): the whole stack against the real local Ollama
(SmolLM2-135M, ``scripts/local_model.sh``) vs a direct client loop against the same server, in the same run.

1. **direct**: a plain loop of ``OllamaProvider.chat`` calls with the same request the generator sends (the same
   rendered prompts, ``format`` = the template's schema, ``num_predict`` cap, temperature), keeping the answers that
   are valid JSON for the schema and not exact duplicates, until N = 20 are kept — what a hand-written script
   would do. Run at concurrency 1, 2 and 4; ``direct`` is the best wall time (the server's best concurrency).
2. **stack**: six services as processes on the real Kafka and MongoDB-wire server (``tests.e2e.stack``) with the
   catalog and generator pointed at the same Ollama; one job of N = 20 with the job concurrency a user would
   pick (4) submitted with ``POST /generate``; ``wall`` runs from the 202 to the terminal status. ``timeouts``
   counts the job's attempts that ended in ``provider_timeout``; ``valid_first_try`` is the share of items
   accepted at their first item attempt; ``concurrency`` is what the generator learned for the Ollama endpoint
   (``GET /generate/{id}``), or the configured value when it reports none.

Last line, exactly: ``local-model: N=20 wall=<s> direct=<s> ratio=<wall/direct> timeouts=<count>
valid_first_try=<fraction> concurrency=<learned>``. Targets (issue 15): ratio ≤ 1.10, timeouts = 0.
Needs Kafka + Mongo (``scripts/infra.sh up``) and the local model (``scripts/local_model.sh up``); without the
model it prints ``local-model: skipped (<reason>)`` and exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import register_and_login  # noqa: E402
from tests.e2e.stack import new_stack  # noqa: E402

from llmts_providers import ChatMessage, ChatRequest, OllamaProvider, ProviderError  # noqa: E402

BASE_URL = os.environ.get("LOCAL_MODEL_URL", "http://127.0.0.1:11434")
MODEL = os.environ.get("LOCAL_MODEL_NAME", "smollm2:135m")
SYSTEM = "You write one JSON object and nothing else."
USER = "Item {index}: name a country and one short fact about it."
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "country": {"type": "string", "minLength": 2, "maxLength": 60},
        "fact": {"type": "string", "minLength": 5, "maxLength": 300},
    },
    "required": ["country", "fact"],
    "additionalProperties": False,
}
TEMPERATURE = 0.7
MAX_TOKENS = 60


def template() -> dict[str, Any]:
    return {
        "name": "bench local model",
        "prompts": {"system": SYSTEM, "user": USER.replace("{index}", "{{ index }}")},
        "schema": SCHEMA,
        "validation": {"mode": "strict", "rules": []},
        "model": {"provider": "ollama", "id": MODEL, "temperature": TEMPERATURE, "max_tokens": MAX_TOKENS},
    }


# --- direct ------------------------------------------------------------------------------------------------------
async def direct_run(provider: OllamaProvider, n: int, concurrency: int) -> tuple[float, int]:
    """Seconds until ``n`` distinct valid answers were kept, calling at ``concurrency``; and the calls made."""
    validator = Draft202012Validator(SCHEMA)
    kept: set[str] = set()
    next_index = 0
    calls = 0

    async def worker() -> None:
        nonlocal next_index, calls
        while len(kept) < n:
            index = next_index
            next_index += 1
            request = ChatRequest(
                model=MODEL,
                messages=[
                    ChatMessage(role="system", content=SYSTEM),
                    ChatMessage(role="user", content=USER.format(index=index)),
                ],
                temperature=TEMPERATURE,
                max_tokens=MAX_TOKENS,
                json_schema=SCHEMA,
            )
            calls += 1
            try:
                result = await provider.chat(request)
                value = json.loads(result.text)
            except (ProviderError, ValueError):
                continue
            if validator.is_valid(value):
                kept.add(json.dumps(value, sort_keys=True))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, calls


# --- stack -------------------------------------------------------------------------------------------------------
async def stack_run(gateway: httpx.AsyncClient, n: int, concurrency: int) -> dict[str, Any]:
    user = await register_and_login(gateway, "bench-local")
    r = await gateway.post("/templates", json=template(), headers=user.headers)
    r.raise_for_status()
    body = {"template_id": r.json()["id"], "count": n, "concurrency": concurrency, "max_attempts_per_item": 4}
    started = time.perf_counter()
    r = await gateway.post("/generate", json=body, headers=user.headers)
    if r.status_code != 202:
        raise RuntimeError(f"POST /generate answered {r.status_code}: {r.text}")
    job_id = r.json()["job_id"]
    job: dict[str, Any] = {}
    seen: list[str] = []  # the learned limit while the job runs (the view shows it only then)
    while True:
        job = (await gateway.get(f"/generate/{job_id}", headers=user.headers)).json()
        if job.get("status") in ("completed", "completed_with_errors", "failed", "cancelled"):
            break
        learned = learned_concurrency(job)
        if learned is not None and (not seen or seen[-1] != learned):
            seen.append(learned)
        await asyncio.sleep(0.5)  # light polling: every CPU ms here is taken from the model on 2 cores
    wall = time.perf_counter() - started
    history = (
        await gateway.get(f"/history/{job_id}", params={"attempts_limit": 5000}, headers=user.headers)
    ).json()
    attempts = history["attempts"]["items"]
    result = (
        await gateway.get(f"/generate/{job_id}/result", params={"limit": 1000}, headers=user.headers)
    ).json()
    items = result["items"]
    return {
        "job": job,
        "wall": wall,
        "timeouts": sum(1 for a in attempts if (a.get("error") or {}).get("code") == "provider_timeout"),
        "valid_first_try": sum(1 for i in items if i["attempts"] == 1) / max(1, n),
        "calls": len(attempts),
        "outcomes": {k: v["count"] for k, v in history["attempts"]["by_outcome"].items()},
        "kinds": dict(Counter(str(a.get("kind")) for a in attempts)),
        "seen": "→".join(seen) or "none",
        "learned": seen[-1] if seen else None,
    }


def learned_concurrency(job: dict[str, Any]) -> str | None:
    """The generator's current limit for the Ollama endpoint, as ``GET /generate/{id}`` reports it mid-job."""
    reported = job.get("concurrency")
    if isinstance(reported, dict):
        value = reported.get("ollama", reported)
        if isinstance(value, dict) and "current" in value:
            return str(value["current"])
    return None


async def direct_runs(n: int) -> dict[int, float]:
    provider = OllamaProvider(base_url=BASE_URL, timeout_s=600.0)
    try:
        await direct_run(
            provider, 2, 1
        )  # warm-up: the model is loaded, the first call's load time is not counted
        direct: dict[int, float] = {}
        for c in (1, 2, 4):
            wall, calls = await direct_run(provider, n, c)
            direct[c] = wall
            print(f"direct: N={n} concurrency={c} wall={wall:.2f}s calls={calls}", flush=True)
        return direct
    finally:
        await provider.aclose()


async def main_async(args: argparse.Namespace) -> str:
    stack = new_stack(ollama_base_url=BASE_URL)
    try:
        stack.start()  # up (idle) during the direct runs too: both measured on the same loaded machine
        direct = await direct_runs(args.count)
        async with httpx.AsyncClient(base_url=stack.gateway, timeout=60.0) as gateway:
            run = await stack_run(gateway, args.count, args.concurrency)
    finally:
        stack.stop()
    best_c = min(direct, key=lambda c: direct[c])
    job = run["job"]
    print(
        f"stack: status={job['status']} succeeded={job['counts']['succeeded']} calls={run['calls']} "
        f"kinds={run['kinds']} outcomes={run['outcomes']} concurrency_seen={run['seen']} logs={stack.log_dir}",
        flush=True,
    )
    ratio = run["wall"] / direct[best_c]
    return (
        f"local-model: N={args.count} wall={run['wall']:.2f} direct={direct[best_c]:.2f} ratio={ratio:.3f} "
        f"timeouts={run['timeouts']} valid_first_try={run['valid_first_try']:.2f} "
        f"concurrency={run['learned'] or f'{args.concurrency}(fixed)'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4, help="the job's concurrency (what a user asks)")
    args = parser.parse_args()
    subprocess.run(["bash", str(ROOT / "scripts" / "infra.sh"), "up"], check=True, cwd=ROOT, timeout=1800)
    try:
        httpx.get(f"{BASE_URL}/api/version", timeout=5.0).raise_for_status()
    except httpx.HTTPError as exc:
        print(
            f"local-model: skipped (no local model server at {BASE_URL}: {exc}; run scripts/local_model.sh up)"
        )
        raise SystemExit(2) from exc
    print(asyncio.run(main_async(args)), flush=True)


if __name__ == "__main__":
    main()
