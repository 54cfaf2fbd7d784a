"""Chaos scenarios against the whole local system: `uv run python -m tests.chaos.run` (or `make chaos`).

Starts its own stack (tests/e2e/stack.py) on the local Kafka + MongoDB-wire server, then runs each scenario: a job
of N ≥ 200 items against the fake OpenRouter (with latency, so the job lasts long enough to be disrupted), a
disruption in the middle, and afterwards the same checks:

* the job completed, with exactly N valid items (schema-checked here), dense indexes 0..N-1, no duplicate
  index and no duplicate content;
* billing: the job's usage equals the sum of its attempts, exactly N attempts are `valid`, and — when no process
  holding in-flight calls was killed — the job's cost equals the fake provider's served cost (`/_fake/stats`);
* no event lost: every envelope of the job on `generation.events`, read from the beginning with aiokafka and
  deduplicated by envelope id, gives one ItemGenerated per index 0..N-1 and a GenerationCompleted whose counts
  match the job's.

Each scenario prints one line with its measured figures; the output ends with exactly one line
`chaos: <held>/<total> scenarios held`. Every scenario is bounded in time (SCENARIO_TIMEOUT) and the infrastructure
is brought back up whatever happens. Exit code 0 only when every scenario held.

Options: `--only 1,4` runs a subset; `--items N` (default 200); env CHAOS_LATENCY_MS (default 250).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from jsonschema import Draft202012Validator

from tests.e2e import api
from tests.e2e.stack import ROOT, Stack, new_stack

N_DEFAULT = 200
LATENCY_MS = int(os.environ.get("CHAOS_LATENCY_MS", "250"))
CONCURRENCY = 8
SCENARIO_TIMEOUT = float(os.environ.get("CHAOS_SCENARIO_TIMEOUT", "150"))
PASSWORD = "chaos horse battery staple 42"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "name", "score", "tags"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "name": {"type": "string", "minLength": 3, "maxLength": 40},
        "score": {"type": "integer", "minimum": 0, "maximum": 1000000},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 4},
    },
}
TEMPLATE: dict[str, Any] = {
    "name": "chaos records",
    "prompts": {
        "system": "You produce test records as JSON.",
        "user": "Record #{{ index + 1 }} of a test set.",
    },
    "schema": SCHEMA,
    "validation": {"mode": "strict"},
    "model": {"provider": "openrouter", "id": "openai/gpt-4o-mini", "max_tokens": 300},
}


class ScenarioFailed(AssertionError):
    pass


def need(cond: bool, message: str) -> None:
    if not cond:
        raise ScenarioFailed(message)


@dataclass
class Outcome:
    name: str
    held: bool
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        figs = " ".join(f"{k}={v}" for k, v in self.figures.items())
        verdict = "held" if self.held else "BROKE"
        tail = f" problems: {'; '.join(self.problems)}" if self.problems else ""
        return f"scenario {self.name}: {verdict} {figs}{tail}"


class Chaos:
    def __init__(self, stack: Stack, items: int) -> None:
        self.stack = stack
        self.n = items
        self.client = httpx.AsyncClient(base_url=stack.gateway, timeout=30.0)
        self.headers: dict[str, str] = {}
        self.token = ""
        self.template_id = ""
        self.jobs: list[str] = []

    async def setup(self) -> None:
        email = f"chaos-{int(time.time())}@example.com"
        r = await self.client.post("/auth/register", json={"email": email, "password": PASSWORD})
        need(r.status_code == 201, f"register: {r.status_code} {r.text[:200]}")
        await self.login(email)
        r = await self.client.post("/templates", headers=self.headers, json=TEMPLATE)
        need(r.status_code == 201, f"template: {r.status_code} {r.text[:200]}")
        self.template_id = r.json()["id"]
        self.email = email

    async def login(self, email: str) -> None:
        r = await self.client.post("/auth/login", json={"email": email, "password": PASSWORD})
        need(r.status_code == 200, f"login: {r.status_code} {r.text[:200]}")
        self.token = r.json()["access_token"]
        self.headers = api.bearer(self.token)

    # --- helpers ------------------------------------------------------------------------------------------------

    async def retrying(
        self,
        fn: Callable[[], Awaitable[httpx.Response]],
        ok: tuple[int, ...],
        within: float = 60,
    ) -> httpx.Response:
        deadline = time.monotonic() + within
        last: Any = None
        while time.monotonic() < deadline:
            try:
                r = await fn()
                if r.status_code in ok:
                    return r
                last = f"{r.status_code} {r.text[:200]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            await asyncio.sleep(0.5)
        raise ScenarioFailed(f"no success within {within}s: {last}")

    async def start_job(self, n: int | None = None, concurrency: int = CONCURRENCY) -> str:
        body = {"template_id": self.template_id, "count": n or self.n, "concurrency": concurrency}
        r = await self.retrying(
            lambda: self.client.post("/generate", headers=self.headers, json=body), (202,)
        )
        job_id = str(r.json()["job_id"])
        self.jobs.append(job_id)
        return job_id

    async def cancel_open_jobs(self, within: float = 30) -> None:
        """After a scenario, cancels its jobs that have not ended and waits until they did: a scenario that broke
        half-way must not keep calling the fake provider into the next one (whose billing check compares the fake's
        served cost with its own job's)."""
        jobs, self.jobs = self.jobs, []
        deadline = time.monotonic() + within
        for job_id in jobs:
            while time.monotonic() < deadline:
                st = await self.status(job_id)
                if st is not None and st.get("status") in api.TERMINAL_STATUSES:
                    break
                with contextlib.suppress(httpx.HTTPError):
                    await self.client.delete(f"/generate/{job_id}", headers=self.headers, timeout=5)
                await asyncio.sleep(0.5)
        await asyncio.sleep(2 * LATENCY_MS / 1000)  # calls in flight at the cancel end on the fake meanwhile

    async def status(self, job_id: str) -> dict[str, Any] | None:
        try:
            r = await self.client.get(f"/generate/{job_id}", headers=self.headers, timeout=5)
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 else None

    async def wait_progress(self, job_id: str, fraction: float, within: float = 60) -> int:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            st = await self.status(job_id)
            done = int(((st or {}).get("counts") or {}).get("succeeded", 0))
            if st and st.get("status") in api.TERMINAL_STATUSES:
                raise ScenarioFailed(f"job ended before the disruption: {st.get('status')}")
            if done >= fraction * self.n:
                return done
            await asyncio.sleep(0.1)
        raise ScenarioFailed(f"job did not reach {fraction:.0%} within {within}s")

    async def time_to_progress(self, job_id: str, since: float, baseline: int, within: float = 90) -> float:
        """Seconds from ``since`` until the job's succeeded count moved past ``baseline`` (or it ended)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            st = await self.status(job_id)
            if st:
                done = int((st.get("counts") or {}).get("succeeded", 0))
                if done > baseline or st.get("status") in api.TERMINAL_STATUSES:
                    return round(time.monotonic() - since, 2)
            await asyncio.sleep(0.1)
        raise ScenarioFailed(f"no progress within {within}s of the disruption")

    async def wait_done(self, job_id: str, within: float = SCENARIO_TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + within
        st: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            st = await self.status(job_id)
            if st and st.get("status") in api.TERMINAL_STATUSES:
                return st
            await asyncio.sleep(0.3)
        raise ScenarioFailed(f"job not terminal within {within}s: {st}")

    async def verify_job(self, job_id: str, *, exact_billing: bool) -> dict[str, Any]:
        """The checks every scenario ends with; returns figures."""
        st = await self.wait_done(job_id)
        need(
            st["status"] == "completed", f"status {st['status']} ({st.get('stop_reason')}, {st.get('error')})"
        )
        need(st["counts"]["succeeded"] == self.n, f"succeeded {st['counts']['succeeded']} != {self.n}")
        items = await api.all_items(self.client, job_id, self.headers)
        indexes = [it["index"] for it in items]
        dup_index = len(indexes) - len(set(indexes))
        contents = [json.dumps(it["data"], sort_keys=True) for it in items]
        dup_content = len(contents) - len(set(contents))
        validator = Draft202012Validator(SCHEMA)
        invalid = sum(1 for it in items if any(True for _ in validator.iter_errors(it["data"])))
        need(len(items) == self.n, f"{len(items)} items in the result, want {self.n}")
        need(sorted(indexes) == list(range(self.n)), f"indexes not 0..N-1 (duplicates: {dup_index})")
        need(dup_content == 0, f"{dup_content} duplicate contents")
        need(invalid == 0, f"{invalid} items invalid against the schema")

        # billing: attempts of the job add up to its usage; N valid attempts; the provider billed the same
        r = await self.retrying(
            lambda: self.client.get(f"/history/{job_id}", headers=self.headers, params={"attempts_limit": 0}),
            (200,),
        )
        hist = r.json()
        by_outcome = hist["attempts"]["by_outcome"]
        attempts_cost = sum(float(v["cost_usd"]) for v in by_outcome.values())
        valid_attempts = int(by_outcome.get("valid", {}).get("count", 0))
        job_cost = float(st["usage"]["cost_usd"])
        need(abs(attempts_cost - job_cost) < 1e-6, f"job cost {job_cost} != sum of attempts {attempts_cost}")
        # a valid answer whose item was not stored yet when its process was killed is billed (the provider did bill
        # it) and its slot generated again: tolerated only where a process with in-flight calls was killed
        orphan_valid = valid_attempts - self.n
        if exact_billing:
            need(orphan_valid == 0, f"{valid_attempts} valid attempts recorded, want {self.n}")
        else:
            need(
                0 <= orphan_valid <= CONCURRENCY,
                f"{valid_attempts} valid attempts, want {self.n}..+{CONCURRENCY}",
            )
        fake = await api.fake_stats(self.stack.fake_openrouter)
        fake_cost = float(fake.get("cost_usd", 0.0))
        if exact_billing:
            need(
                abs(fake_cost - job_cost) < 1e-6,
                f"provider served ${fake_cost:.6f}, job billed ${job_cost:.6f}",
            )
        else:
            need(
                job_cost <= fake_cost + 1e-9, f"job billed ${job_cost:.6f} > provider served ${fake_cost:.6f}"
            )

        # events: deduplicated by envelope id, they add up to the final counts
        envelopes = await api.job_events(job_id, topic=self.stack.topic("generation.events"), within=45)
        unique, redelivered = api.dedup_envelopes(envelopes)
        types = Counter(e["type"] for e in unique)
        gen_idx = [e["data"].get("index") for e in unique if e["type"] == "llmts.generation.item_generated"]
        completed = [e for e in unique if e["type"] == "llmts.generation.completed"]
        need(
            sorted(set(gen_idx)) == list(range(self.n)),
            f"ItemGenerated for {len(set(gen_idx))} of {self.n} indexes",
        )
        need(len(completed) >= 1, "no GenerationCompleted on generation.events")
        counts = completed[-1]["data"].get("counts") or completed[-1]["data"]
        need(
            int(counts.get("succeeded", -1)) == self.n,
            f"GenerationCompleted says succeeded={counts.get('succeeded')}",
        )
        need(
            int(counts.get("rejected", -1)) == st["counts"]["rejected"],
            f"GenerationCompleted says rejected={counts.get('rejected')}, job {st['counts']['rejected']}",
        )
        rejected_events = types.get("llmts.generation.item_rejected", 0)
        need(
            rejected_events == st["counts"]["rejected"],
            f"{rejected_events} ItemRejected events, job counts {st['counts']['rejected']} rejected",
        )
        return {
            "attempts": st["counts"]["attempts"],
            "item_attempts": st["counts"]["item_attempts"],
            "dup_index": dup_index,
            "dup_content": dup_content,
            "dup_item_events": len(gen_idx) - len(set(gen_idx)),
            "redelivered_events": redelivered,
            "completed_events": len(completed),
            "job_cost": round(job_cost, 6),
            "provider_cost": round(fake_cost, 6),
            "provider_calls": fake.get("calls"),
            "orphan_valid": orphan_valid,
            "rejected": st["counts"]["rejected"],
        }

    async def fresh_fake(self, **config: Any) -> None:
        await api.fake_reset(self.stack.fake_openrouter)
        await api.fake_config(self.stack.fake_openrouter, **{"latency_ms": LATENCY_MS, **config})


# --- infrastructure -----------------------------------------------------------------------------------------------


def infra(*args: str, timeout: float = 120) -> float:
    t0 = time.monotonic()
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "infra.sh"), *args],
        check=True,
        timeout=timeout,
        cwd=ROOT,
        capture_output=True,
    )
    return round(time.monotonic() - t0, 2)


def infra_up() -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "infra.sh"), "up"],
            check=False,
            timeout=180,
            cwd=ROOT,
            capture_output=True,
        )


async def create_topic(name: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from llmts_common.kafka_security import kafka_client_options

    admin = AIOKafkaAdminClient(**kafka_client_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()


async def delete_topic(name: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    from llmts_common.kafka_security import kafka_client_options

    admin = AIOKafkaAdminClient(**kafka_client_options())
    await admin.start()
    try:
        await admin.delete_topics([name])
    except Exception as exc:  # best effort clean-up
        print(f"chaos: could not delete {name}: {exc}", flush=True)
    finally:
        await admin.close()


# --- scenarios --------------------------------------------------------------------------------------------------


async def s1_kill_generator(c: Chaos) -> dict[str, Any]:
    await c.fresh_fake()
    job = await c.start_job()
    base = await c.wait_progress(job, 0.3)
    t_kill = time.monotonic()
    c.stack.procs["generator"].kill()
    await asyncio.sleep(0.5)
    c.stack.procs["generator"].start()
    await asyncio.to_thread(c.stack.wait_ready, 60.0, ("generator",))
    recover = await c.time_to_progress(job, t_kill, base + 1)
    figures = await c.verify_job(job, exact_billing=False)
    return {"done_at_kill": base, "recover_s": recover, **figures}


async def s2_restart_kafka(c: Chaos) -> dict[str, Any]:
    await c.fresh_fake()
    job = await c.start_job()
    base = await c.wait_progress(job, 0.3)
    t0 = time.monotonic()
    took = await asyncio.to_thread(infra, "restart", "kafka")
    recover = await c.time_to_progress(job, t0, base + 1)
    figures = await c.verify_job(job, exact_billing=True)
    return {"done_at_restart": base, "restart_s": took, "recover_s": recover, **figures}


async def s3_restart_mongo(c: Chaos) -> dict[str, Any]:
    await c.fresh_fake()
    job = await c.start_job()
    base = await c.wait_progress(job, 0.3)
    t0 = time.monotonic()
    took = await asyncio.to_thread(infra, "restart", "mongo")
    recover = await c.time_to_progress(job, t0, base + 1)
    figures = await c.verify_job(job, exact_billing=True)
    return {"done_at_restart": base, "restart_s": took, "recover_s": recover, **figures}


async def s4_provider_storm(c: Chaos) -> dict[str, Any]:
    await c.fresh_fake()
    job = await c.start_job()
    base = await c.wait_progress(job, 0.1)
    await api.fake_config(
        c.stack.fake_openrouter, rate_429=0.15, retry_after_s=1, rate_5xx=0.15, status_5xx=503
    )
    storm_s = 8.0
    await asyncio.sleep(storm_s)
    await api.fake_config(c.stack.fake_openrouter, rate_429=0, rate_5xx=0)
    t_calm = time.monotonic()
    st = await c.status(job) or {}
    done_in_storm = int((st.get("counts") or {}).get("succeeded", 0)) - base
    stats = await api.fake_stats(c.stack.fake_openrouter)
    outcomes = stats.get("by_outcome") or {}
    errors = sum(v for k, v in outcomes.items() if str(k).startswith(("429", "5", "rate", "status", "error")))
    figures = await c.verify_job(job, exact_billing=True)
    figures["drain_s"] = round(time.monotonic() - t_calm, 2)
    return {
        "storm_s": storm_s,
        "done_in_storm": done_in_storm,
        "provider_errors": errors,
        "outcomes": json.dumps(outcomes, separators=(",", ":")),
        **figures,
    }


async def s5_kill_exporter(c: Chaos) -> dict[str, Any]:
    paths = await api.openapi_paths(c.client)
    need("post" in paths.get("/exports", {}), "gateway does not serve POST /exports")
    await c.fresh_fake(latency_ms=0)
    job = await c.start_job(concurrency=32)
    figures = await c.verify_job(job, exact_billing=True)
    exports: dict[str, str] = {}
    for fmt in api.EXPORT_FORMATS:
        r = await c.client.post("/exports", headers=c.headers, json={"job_id": job, "format": fmt})
        need(r.status_code == 202, f"export {fmt}: {r.status_code} {r.text[:200]}")
        exports[fmt] = r.json()["export_id"]
    # kill as soon as one export is running (or after 150 ms, whatever comes first)
    deadline = time.monotonic() + 0.15
    states: Counter[str] = Counter()
    while time.monotonic() < deadline:
        r = await c.client.get(f"/exports/{exports['pdf']}", headers=c.headers)
        if r.status_code == 200 and r.json()["status"] != "queued":
            break
        await asyncio.sleep(0.02)
    for eid in exports.values():
        r = await c.client.get(f"/exports/{eid}", headers=c.headers)
        states[r.json().get("status", "?") if r.status_code == 200 else str(r.status_code)] += 1
    t_kill = time.monotonic()
    c.stack.procs["exporter"].kill()
    await asyncio.sleep(0.5)
    c.stack.procs["exporter"].start()
    await asyncio.to_thread(c.stack.wait_ready, 60.0, ("exporter",))
    done = await asyncio.gather(
        *(api.wait_export(c.client, eid, c.headers, within=90) for eid in exports.values())
    )
    recover = round(time.monotonic() - t_kill, 2)
    bad = {
        fmt: d
        for fmt, d in zip(exports, done, strict=True)
        if d["status"] != "ready" or d.get("items") not in (None, c.n)
    }
    need(not bad, f"exports not ready or wrong count after the kill: {json.dumps(bad)[:400]}")
    for fmt, eid in exports.items():
        r = await c.client.get(f"/exports/{eid}/download", headers=c.headers)
        need(r.status_code == 200 and len(r.content) > 0, f"download {fmt}: {r.status_code}")
    at_kill = ",".join(f"{k}:{v}" for k, v in sorted(states.items()))
    return {
        "exports": len(exports),
        "at_kill": at_kill,
        "all_ready_s": recover,
        "job_attempts": figures["attempts"],
    }


async def s6_sigterm_gateway(c: Chaos) -> dict[str, Any]:
    await c.fresh_fake()
    job = await c.start_job()
    seen_after: list[dict[str, Any]] = []
    restarted = asyncio.Event()

    async def on_message(msg: dict[str, Any]) -> None:
        if restarted.is_set():
            seen_after.append({**msg, "_received": time.monotonic()})

    watcher = asyncio.create_task(
        api.watch_ws(c.stack.gateway, job, c.token, within=SCENARIO_TIMEOUT, on_message=on_message)
    )
    base = await c.wait_progress(job, 0.3)
    t0 = time.monotonic()
    gw = c.stack.procs["gateway"]
    gw.signal(signal.SIGTERM)
    assert gw.popen is not None
    await asyncio.to_thread(gw.popen.wait, 40)
    stop_s = round(time.monotonic() - t0, 2)
    gw.start()
    restarted.set()
    await asyncio.to_thread(c.stack.wait_ready, 60.0, ("gateway",))
    watch = await asyncio.wait_for(watcher, SCENARIO_TIMEOUT)
    need(watch.reconnects >= 1, "the WebSocket was never dropped (did the gateway stop?)")
    need(watch.terminal is not None, f"no terminal message after reconnecting ({watch.types()[-5:]})")
    snapshots_after = [m for m in seen_after if m.get("type") == "snapshot"]
    need(bool(snapshots_after), "no snapshot (state) after the reconnect")
    first = snapshots_after[0]
    state_after = int(((first.get("data") or {}).get("counts") or {}).get("succeeded", 0))
    reconnect_s = round(_first_time(seen_after) - t0, 2) if seen_after else None
    figures = await c.verify_job(job, exact_billing=True)
    return {
        "stop_s": stop_s,
        "reconnects": watch.reconnects,
        "reconnect_s": reconnect_s,
        "state_on_reconnect": f"{state_after}/{c.n}",
        "done_at_sigterm": base,
        **figures,
    }


def _first_time(msgs: list[dict[str, Any]]) -> float:
    return float(msgs[0].get("_received", time.monotonic())) if msgs else time.monotonic()


SCENARIOS: list[tuple[str, str, Callable[[Chaos], Awaitable[dict[str, Any]]]]] = [
    ("1", "kill-9-generator", s1_kill_generator),
    ("2", "restart-kafka", s2_restart_kafka),
    ("3", "restart-mongo", s3_restart_mongo),
    ("4", "provider-storm", s4_provider_storm),
    ("5", "kill-9-exporter", s5_kill_exporter),
    ("6", "sigterm-gateway-ws", s6_sigterm_gateway),
]


async def run_all(only: set[str] | None, items: int) -> int:
    infra_up()
    stack = new_stack(openrouter_latency_ms=LATENCY_MS)
    # The stack's topics are its own (KAFKA_TOPIC_PREFIX=e2e-<run>.): other stacks' jobs on this Kafka (e2e runs,
    # benchmarks) are never replayed here, so their provider calls cannot spoil the billing comparison.
    topic = stack.topic("generation.commands")
    print(f"chaos: stack logs in {stack.log_dir}, commands on {topic}", flush=True)
    outcomes: list[Outcome] = []
    selected = [s for s in SCENARIOS if not only or s[0] in only]
    t_all = time.monotonic()
    try:
        await asyncio.to_thread(stack.start)
        chaos = Chaos(stack, items)
        await chaos.setup()
        for num, name, fn in selected:
            t0 = time.monotonic()
            outcome = Outcome(f"{num}-{name}", held=False)
            try:
                await chaos.login(chaos.email)  # a fresh access token per scenario
                figures = await asyncio.wait_for(fn(chaos), SCENARIO_TIMEOUT + 60)
                outcome.figures = figures
                outcome.held = True
            except (ScenarioFailed, TimeoutError) as exc:
                outcome.problems.append(str(exc) or type(exc).__name__)
            except (
                Exception
            ) as exc:  # a crash of the harness is a scenario that did not hold, with the reason
                outcome.problems.append(f"{type(exc).__name__}: {exc}")
                traceback.print_exc()
            finally:
                infra_up()  # whatever happened, the infrastructure is back before the next scenario
                for pname, proc in stack.procs.items():
                    if not proc.alive():
                        proc.start()
                        await asyncio.to_thread(stack.wait_ready, 60.0, (pname,))
                await api.fake_config(stack.fake_openrouter, rate_429=0, rate_5xx=0, latency_ms=LATENCY_MS)
                if not outcome.held:
                    with contextlib.suppress(Exception):
                        await chaos.cancel_open_jobs()
                chaos.jobs.clear()
            outcome.figures = {"took_s": round(time.monotonic() - t0, 1), **outcome.figures}
            outcomes.append(outcome)
            print(outcome.line(), flush=True)
        await chaos.client.aclose()
    finally:
        await asyncio.to_thread(stack.stop)
        infra_up()
        await delete_topic(topic)
    held = sum(o.held for o in outcomes)
    print(f"chaos: total {time.monotonic() - t_all:.0f}s", flush=True)
    print(f"chaos: {held}/{len(selected)} scenarios held", flush=True)
    return 0 if held == len(selected) else 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="", help="comma-separated scenario numbers, e.g. 1,4")
    parser.add_argument("--items", type=int, default=N_DEFAULT)
    args = parser.parse_args()
    only = {s.strip() for s in args.only.split(",") if s.strip()} or None
    sys.exit(asyncio.run(run_all(only, max(1, args.items))))


if __name__ == "__main__":
    main()
