"""Fairness benchmark (``make bench-fairness``): does one user's backlog delay another user's small job?

Starts (as processes, on free 127.0.0.1 ports) the fake OpenRouter at latency L = 200 ms, the templates service, the
generator (default settings: ``MAX_JOBS`` 32, ``MAX_JOBS_PER_USER`` 8, provider ceiling 64) and the gateway (with
generous per-user quotas: the benchmark measures scheduling, not admission limits), plus an in-process JWKS
endpoint for a throwaway signing key; assumes Kafka and the Mongo-wire server are up (``scripts/infra.sh up``).
Every name it creates (database, consumer groups, topics) carries a per-run id. Then, each user with its
own template, every job at the API's default concurrency and without dedup (the fake answers alike):

1. warm-up: one job of user A of ``--warmup-items`` items at concurrency 64 (the stack under load once: the JIT of
   the local Kafka and Mongo-wire server compiles their hot paths — a cold Mongo-wire server spends its first tens
   of seconds of load compiling, at twice the CPU per command), then one job of user B (connections, caches,
   consumer assignment);
2. **solo**: user B's job of 10 items alone, ``--repeat`` times; ``solo_s`` is the median time from the 202 to
   the terminal event on the job's WebSocket;
3. **shared**: user A submits 20 jobs × 500 items (10,000 calls at least), the benchmark waits until A's calls
   saturate the provider limit (``--ramp-s``), then user B's job of 10 items is submitted and timed the same way,
   ``--repeat`` times, while A's backlog runs; ``shared_s`` is the median;
4. A's jobs are cancelled (``DELETE /generate/{id}``) and the benchmark waits for them to end, then stops
   everything.

Prints what it saw on the way, then exactly ``fairness: solo_s=<B alone> shared_s=<B behind A>
ratio=<shared/solo>`` as the last line. Target: ratio ≤ 1.5.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import statistics
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient

from bench_generation import (
    Proc,
    call_timing,
    cpu_seconds,
    jwks_app,
    service_procs,
    stack_env,
    stop_stack,
    watch_terminal,
)
from llmts_common.contracts import GENERATION_TERMINAL_EVENTS, topics
from llmts_common.kafka_security import kafka_client_options

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.server import RunningFake  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from tests.support.tokens import access_token, signing_key  # noqa: E402

EXTRA: dict[str, Any] = json.loads(
    os.environ.get("BENCH_JOB_EXTRA", "{}")
)  # experiments: e.g. {"cache": "off"}
TERMINAL = ("completed", "completed_with_errors", "failed", "cancelled")
TERMINAL_EVENT_TYPES = tuple(m.TYPE for m in GENERATION_TERMINAL_EVENTS)
TEMPLATE: dict[str, Any] = {
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


class InfraProbe:
    """Round trips of one trivial Mongo update and one Kafka produce every 50 ms while a phase runs: how slow the
    shared infrastructure (this machine's Mongo-wire server and broker) is under A's load, next to B's stages."""

    def __init__(self, run: str, services: dict[str, str] | None = None) -> None:
        self.services = services or {}  # name → base URL: their event-loop lag (/metrics) is reported too
        self._lag0: dict[str, dict[float, float]] = {}
        self.guard_cap: float | None = None
        self.mongo = AsyncMongoClient(os.environ.get("MONGO_URL", "mongodb://127.0.0.1:27017"))
        self.col = self.mongo[f"llmts_bench_fair_{run}_probe"]["probe"]
        self.producer = AIOKafkaProducer(**kafka_client_options())
        self.topic = f"bench.fairness.probe.{run}"
        self.samples: dict[str, list[float]] = {"mongo": [], "kafka": []}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.producer.start()
        await self.producer.send_and_wait(self.topic, b"warm-up")

    async def _loop(self) -> None:
        while True:
            t = time.perf_counter()
            await self.col.update_one({"_id": 1}, {"$inc": {"n": 1}}, upsert=True)
            self.samples["mongo"].append(time.perf_counter() - t)
            t = time.perf_counter()
            await self.producer.send_and_wait(self.topic, b"probe")
            self.samples["kafka"].append(time.perf_counter() - t)
            await asyncio.sleep(0.05)

    async def _lag_buckets(self) -> dict[str, dict[float, float]]:
        """Cumulative bucket counts of each service's ``llmts_event_loop_lag_seconds`` (upper bound → count)."""
        out: dict[str, dict[float, float]] = {}
        async with httpx.AsyncClient(timeout=10) as c:
            for name, url in self.services.items():
                buckets: dict[float, float] = {}
                for line in (await c.get(url + "/metrics")).text.splitlines():
                    if line.startswith("llmts_generator_load_guard_calls "):
                        self.guard_cap = float(line.rsplit(" ", 1)[1])
                    if line.startswith("llmts_event_loop_lag_seconds_bucket{"):
                        le = line.split('le="', 1)[1].split('"', 1)[0]
                        buckets[math.inf if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
                out[name] = buckets
        return out

    async def begin(self) -> None:
        self.samples = {"mongo": [], "kafka": []}
        self._lag0 = await self._lag_buckets()
        self._task = asyncio.create_task(self._loop())

    async def end(self, label: str) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        parts = []
        for name, values in self.samples.items():
            if values:
                q = statistics.quantiles([v * 1000 for v in values], n=100)
                parts.append(f"{name} p50={q[49]:.1f}ms p99={q[98]:.1f}ms")
        print(f"infra round trips during the {label} runs: {', '.join(parts)}", flush=True)
        if self.services:
            lag1 = await self._lag_buckets()
            lags = []
            for name, after in lag1.items():
                diff = {le: n - self._lag0.get(name, {}).get(le, 0.0) for le, n in sorted(after.items())}
                total = diff.get(math.inf, 0.0)
                if total:
                    qs = []
                    for share in (0.5, 0.9, 0.99):  # the bucket's upper bound where the quantile falls
                        le = next(le for le, n in diff.items() if n >= share * total)
                        qs.append(f"p{round(share * 100)}≤{le * 1000:.0f}ms")
                    lags.append(f"{name} {' '.join(qs)}")
            cap = "none" if self.guard_cap is None or self.guard_cap < 0 else f"{self.guard_cap:.0f} calls"
            print(
                f"event-loop lag during the {label} runs: {', '.join(lags)}; the generator's load guard at the "
                f"end: {cap} (LOOP_LAG_TARGET_MS)",
                flush=True,
            )

    async def aclose(self) -> None:
        await self.producer.stop()
        with contextlib.suppress(Exception):
            await self.mongo.drop_database(self.col.database.name)
        await self.mongo.close()


class KafkaWatch:
    """Reads the run's command and event topics (no consumer group, from the latest offset) and notes, for the jobs
    it is told to watch, when each record was produced (its CreateTime, stamped by the producing client) and when
    it arrived here: splits the command stage (gateway → Kafka → generator) and the relay (generator → Kafka →
    gateway → WebSocket) at the broker."""

    def __init__(self, run: str) -> None:
        prefix = f"bench-fair-{run}."
        self.topics = {
            prefix + topics.GENERATION_COMMANDS: "command",
            prefix + topics.GENERATION_EVENTS: "event",
        }
        self.consumer = AIOKafkaConsumer(
            *self.topics, auto_offset_reset="latest", enable_auto_commit=False, **kafka_client_options()
        )
        self.watched: set[bytes] = set()
        self.seen: dict[tuple[str, str], tuple[float, float]] = {}  # (job id, kind) → (produced, received)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        await self.consumer.seek_to_end()
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        async for record in self.consumer:
            kind = self.topics.get(record.topic, "")
            if record.key is None or (kind == "event" and record.key not in self.watched):
                continue  # commands: all (few, and keyed by a job id not known before the 202); events: B's
            if kind == "event":
                if not any(f'"{t}"'.encode() in record.value for t in TERMINAL_EVENT_TYPES):
                    continue
                kind = "terminal"
            self.seen[(record.key.decode(), kind)] = (record.timestamp / 1000.0, time.time())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.consumer.stop()


def stages(
    timings: dict[str, Any], seen: dict[str, Any], kafka: KafkaWatch | None = None, job_id: str = ""
) -> str:
    """Where the wall time went: command delivery (accepted → the generator has it), admission (→ started), the
    run (→ finished), the terminal event's publication (finished → the event's ``time``, set when the generator
    creates it) and its relay to the client (→ seen on the WebSocket). With ``kafka``, the command splits into
    ``outbox`` (accepted → record produced by the gateway), ``broker`` (→ record read by this benchmark's consumer)
    and ``consume`` (→ stored by the generator), the relay into ``write`` (event created → record produced: the
    job's terminal write and the flusher), ``broker`` and ``gateway`` (→ seen on the WebSocket)."""

    def at(key: str) -> float | None:
        raw = timings.get(key)
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).timestamp() if raw else None

    published = seen.get("time") if seen.get("type") != "snapshot" else None
    points = [at("created_at"), at("queued_at"), at("started_at"), at("finished_at")]
    if published:
        points.append(datetime.fromisoformat(str(published).replace("Z", "+00:00")).timestamp())
    points.append(seen.get("at"))
    if any(p is None for p in points):
        return str(timings)
    names = ("command", "admission", "run", "publish" if published else "event", "relay")
    parts = [f"{n}={(b - a) * 1000:.0f}ms" for n, a, b in zip(names, points, points[1:], strict=False)]  # type: ignore[operator]
    command = kafka.seen.get((job_id, "command")) if kafka else None
    if command:
        parts[0] += " ({})".format(
            " ".join(
                f"{n}={(b - a) * 1000:.0f}"
                for n, a, b in (
                    ("outbox", points[0], command[0]),
                    ("broker", command[0], command[1]),
                    ("consume", command[1], points[1]),
                )
            )
        )
    terminal = kafka.seen.get((job_id, "terminal")) if kafka else None
    if terminal and published:
        parts[-1] += " ({})".format(
            " ".join(
                f"{n}={(b - a) * 1000:.0f}"
                for n, a, b in (
                    ("write", points[-2], terminal[0]),
                    ("broker", terminal[0], terminal[1]),
                    ("gateway", terminal[1], points[-1]),
                )
            )
        )
    return " ".join(parts)


class User:
    """One user of the benchmark: a token, a client through the gateway, a template."""

    def __init__(self, name: str, gateway: str, token: str) -> None:
        self.name, self.gateway, self.token = name, gateway, token
        self.client = httpx.AsyncClient(
            base_url=gateway, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )
        self.template_id = ""
        self.kafka: KafkaWatch | None = None

    async def create_template(self) -> None:
        r = await self.client.post("/templates", json={"name": f"bench fairness {self.name}", **TEMPLATE})
        r.raise_for_status()
        self.template_id = r.json()["id"]

    async def submit(self, count: int) -> str:
        body = {"template_id": self.template_id, "count": count, "dedup": False, **EXTRA}
        r = await self.client.post("/generate", json=body)
        r.raise_for_status()
        return str(r.json()["job_id"])

    async def timed_job(self, count: int, label: str, concurrency: int | None = None) -> tuple[float, float]:
        """Seconds from the 202 to the terminal event of a job of ``count`` items (which must complete), and from
        its start to its end in the generator; prints the job's own timings (queued → started → finished)."""
        body = {"template_id": self.template_id, "count": count, "dedup": False, **EXTRA}
        if concurrency is not None:
            body["concurrency"] = concurrency
        r = await self.client.post("/generate", json=body)
        r.raise_for_status()
        t0 = time.perf_counter()
        job_id = r.json()["job_id"]
        if self.kafka is not None:
            self.kafka.watched.add(job_id.encode())
        seen: dict[str, Any] = {}
        final = await watch_terminal(self.gateway, self.token, job_id, seen)
        wall = time.perf_counter() - t0
        succeeded = final.get("succeeded", (final.get("counts") or {}).get("succeeded"))
        if succeeded != count:
            raise RuntimeError(f"user {self.name}'s job did not complete: {final}")
        timings = (await self.client.get(f"/generate/{job_id}")).json().get("timings") or {}
        call_s, _first, _last = await call_timing(self.client, job_id)
        print(
            f"{label}: wall={wall:.3f}s mean call (permit wait + provider, as recorded)={call_s * 1000:.0f}ms "
            f"stages: {stages(timings, seen, self.kafka, job_id)}",
            flush=True,
        )
        return wall, float(timings.get("duration_seconds") or 0.0)

    async def status(self, job_id: str) -> str:
        r = await self.client.get(f"/generate/{job_id}")
        r.raise_for_status()
        return str(r.json().get("status"))

    async def cancel_all(self, job_ids: list[str], timeout_s: float) -> dict[str, int]:
        """Cancel every job not ended yet and wait (at most ``timeout_s``) until all are terminal; their final
        statuses counted."""
        for job_id in job_ids:
            r = await self.client.delete(f"/generate/{job_id}")
            if r.status_code not in (202, 409):  # 409: it ended already
                r.raise_for_status()
        deadline = time.monotonic() + timeout_s
        statuses: dict[str, str] = {}
        while time.monotonic() < deadline:
            statuses = {j: await self.status(j) for j in job_ids}
            if all(s in TERMINAL for s in statuses.values()):
                break
            await asyncio.sleep(0.5)
        counts: dict[str, int] = {}
        for s in statuses.values():
            counts[s] = counts.get(s, 0) + 1
        return counts

    async def aclose(self) -> None:
        await self.client.aclose()


async def wait_running(a: User, job_ids: list[str], ramp_s: float, timeout_s: float = 120) -> dict[str, int]:
    """Wait until the generator has taken in every job of A (none shows ``queued`` for lack of the command, and as
    many run as admission allows: no change for a while), then ``ramp_s`` more for the adaptive limit to grow;
    A's jobs by status then."""
    deadline = time.monotonic() + timeout_s
    seen: dict[str, int] = {}
    while time.monotonic() < deadline:
        statuses = [await a.status(j) for j in job_ids]
        counts = {s: statuses.count(s) for s in sorted(set(statuses))}
        if counts.get("running", 0) >= 1 and counts == seen:
            break
        seen = counts
        await asyncio.sleep(1.0)
    await asyncio.sleep(ramp_s)
    statuses = [await a.status(j) for j in job_ids]
    return {s: statuses.count(s) for s in sorted(set(statuses))}


async def fake_calls(fake_url: str) -> int:
    async with httpx.AsyncClient(timeout=10) as c:
        return int((await c.get(fake_url + "/_fake/stats")).json()["calls"])


def processes(
    run: str, ports: dict[str, int], latency_ms: int, log_dir: Path, jwks: str, ceiling: int | None = None
) -> dict[str, Proc]:
    py = sys.executable
    env = stack_env("fair", run, ports, jwks)

    fake = [py, "-m", "tests.fakes.openrouter", "--port", str(ports["fake"]), "--latency-ms", str(latency_ms)]
    generator = {"PROVIDER_CONCURRENCY": f"openrouter={ceiling}"} if ceiling else {}
    return {
        "fake": Proc("fake_openrouter", fake, env("fake"), ports["fake"], log_dir),
        **service_procs(py, ports, env, log_dir, generator=generator),
    }


def infra_pids() -> dict[str, int]:
    """The local Kafka and Mongo-wire server (their pid files in var/run, or ``BENCH_MONGO_PID`` for a server of
    one's own given by ``MONGO_URL``), when they are ours to see."""
    out: dict[str, int] = {}
    for name in ("kafka", "mongo"):
        with contextlib.suppress(OSError, ValueError):
            out[name] = int((ROOT / "var" / "run" / f"{name}.pid").read_text().strip())
    if os.environ.get("BENCH_MONGO_PID"):  # the benchmark runs against another Mongo-wire server (MONGO_URL)
        out["mongo"] = int(os.environ["BENCH_MONGO_PID"])
    return out


def cpu_of(pids: dict[str, int]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, pid in pids.items():
        with contextlib.suppress(OSError, ValueError, IndexError):
            out[name] = cpu_seconds(pid)
    return out


async def measure(
    a: User, b: User, fake_url: str, pids: dict[str, int], args: argparse.Namespace, probe: InfraProbe
) -> tuple[float, float]:
    """Steps 1–4 of the module doc; (solo_s, shared_s)."""
    if args.warmup_items:
        t = time.perf_counter()
        await a.timed_job(args.warmup_items, "warm-up (stack)", concurrency=64)
        print(
            f"stack warmed up by user A's job of {args.warmup_items} items in {time.perf_counter() - t:.1f}s"
        )
    await b.timed_job(args.b_count, "warm-up")
    await probe.begin()
    solo = [await b.timed_job(args.b_count, "solo") for _ in range(args.repeat)]
    await probe.end("solo")
    a_jobs = [await a.submit(args.a_count) for _ in range(args.a_jobs)]
    ramped = await wait_running(a, a_jobs, args.ramp_s)
    calls0, cpu0 = await fake_calls(fake_url), cpu_of(pids)
    t0 = time.perf_counter()
    try:
        shared = []
        await probe.begin()
        for _ in range(args.repeat):
            shared.append(await b.timed_job(args.b_count, "shared"))
        await probe.end("shared")
    finally:
        elapsed = time.perf_counter() - t0
        rate = (await fake_calls(fake_url) - calls0) / elapsed
        cpu1 = cpu_of(pids)
        busy = {n: (cpu1[n] - cpu0[n]) / elapsed for n in cpu1 if n in cpu0}
        running = [await a.status(j) for j in a_jobs]
        ended = await a.cancel_all(a_jobs, timeout_s=120)
        print(
            f"user A: {args.a_jobs} jobs × {args.a_count} items; after the ramp: {ramped}; provider calls/s "
            f"while B's shared runs ran: {rate:.0f}; A's jobs then: "
            f"{ {s: running.count(s) for s in sorted(set(running))} }; after the cancel: {ended}",
            flush=True,
        )
        print(
            "CPU while B's shared runs ran (share of one core): "
            + " ".join(f"{n}={v:.0%}" for n, v in busy.items())
            + f" total={sum(busy.values()):.0%} of {os.cpu_count()} cores",
            flush=True,
        )
    run_solo = statistics.median(d for _w, d in solo)
    run_shared = statistics.median(d for _w, d in shared)
    print(
        f"in the generator (started → finished, median): solo_s={run_solo:.3f} shared_s={run_shared:.3f} "
        f"ratio={run_shared / run_solo:.3f}",
        flush=True,
    )
    return statistics.median(w for w, _d in solo), statistics.median(w for w, _d in shared)


async def main_async(args: argparse.Namespace) -> str:
    run = uuid.uuid4().hex[:8]
    log_dir = ROOT / "var" / "log" / f"bench-fairness-{run}"
    log_dir.mkdir(parents=True, exist_ok=True)
    key = signing_key(f"bench-fair-{run}")
    jwks = RunningFake(jwks_app(key)).start()
    ports = {n: free_port() for n in ("fake", "templates", "generator", "gateway")}
    procs = processes(run, ports, args.latency_ms, log_dir, jwks.base_url, args.provider_ceiling)
    users: list[User] = []
    try:
        for p in procs.values():
            p.start()
        procs["fake"].wait_ready("/api/v1/models")
        for name in ("templates", "generator", "gateway"):
            procs[name].wait_ready("/health")
        await asyncio.sleep(3.0)  # consumer groups join (the gateway's events consumer starts at 'latest')
        gateway = procs["gateway"].url
        for name in ("A", "B"):
            user = User(name, gateway, access_token(key, f"bench-fair-{name}-{run}", ttl=7200))
            users.append(user)
            await user.create_template()
        pids = {name: proc.p.pid for name, proc in procs.items() if proc.p is not None} | infra_pids()
        lagged = {n: procs[n].url for n in ("generator", "gateway")}
        probe, watch = InfraProbe(run, lagged), KafkaWatch(run)
        await probe.start()
        await watch.start()
        users[1].kafka = watch
        try:
            solo, shared = await measure(users[0], users[1], procs["fake"].url, pids, args, probe)
        finally:
            await watch.aclose()
            await probe.aclose()
        print(f"logs: {log_dir}", flush=True)
        return f"fairness: solo_s={solo:.3f} shared_s={shared:.3f} ratio={shared / solo:.3f}"
    finally:
        for user in users:
            with contextlib.suppress(Exception):
                await user.aclose()
        await stop_stack(procs, jwks, "fair", run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--a-jobs", type=int, default=20, help="jobs user A submits")
    parser.add_argument("--a-count", type=int, default=500, help="items per job of user A")
    parser.add_argument("--b-count", type=int, default=10, help="items of user B's job")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of B's job, alone and behind A")
    parser.add_argument(
        "--warmup-items",
        type=int,
        default=2000,
        help="items of user A's warm-up job before anything is timed (0: none): the stack under load once, so the "
        "JIT of the local Kafka and Mongo-wire server has compiled their hot paths before the timed runs",
    )
    parser.add_argument(
        "--ramp-s", type=float, default=4.0, help="wait after A's submissions before B's runs"
    )
    parser.add_argument(
        "--provider-ceiling",
        type=int,
        default=None,
        help="the generator's OpenRouter ceiling (default: its own)",
    )
    args = parser.parse_args()
    line = asyncio.run(main_async(args))
    print(line, flush=True)


if __name__ == "__main__":
    main()
