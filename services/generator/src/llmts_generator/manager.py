"""Owns the jobs this process runs: claims leases (on a new command, at start-up and periodically), starts a
:class:`JobRunner` per claimed job, routes cancels, and pauses everything on shutdown.

Admission is fair between users (:mod:`~llmts_generator.domain.fairness`): at most ``max_jobs`` jobs at once and at
most ``max_jobs_per_user`` of one user, so a new user's job starts at once while another user's extra jobs stay
queued; the sweep (periodic, and at once when a job ends here) starts queued jobs user by user in round robin. A
job whose cancel was requested is always started (its runner only writes the terminal state)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from dataclasses import dataclass

from llmts_generator.adapters import metrics
from llmts_generator.batchjob import BatchConfig, new_runner
from llmts_generator.domain.fairness import Candidate, admit, pick_admissions
from llmts_generator.domain.state import TERMINAL
from llmts_generator.runner import JobRunner, RunnerDeps

log = logging.getLogger("llmts.generator.jobs")


def default_owner(instance_id: str = "") -> str:
    base = instance_id or f"{socket.gethostname()}:{os.getpid()}"
    return f"{base}/{uuid.uuid4().hex[:8]}"


@dataclass
class _Running:
    runner: JobRunner
    task: asyncio.Task[None]


class JobManager:
    def __init__(
        self,
        deps: RunnerDeps,
        *,
        max_jobs: int,
        sweep_interval_s: float,
        max_jobs_per_user: int | None = None,
        batch: BatchConfig | None = None,
    ) -> None:
        self.deps = deps
        self.batch = batch or BatchConfig()  # batch-mode jobs (mode: batch)
        self.max_jobs = max_jobs
        self.max_jobs_per_user = max_jobs_per_user or max_jobs
        self.sweep_interval_s = sweep_interval_s
        self.running: dict[str, _Running] = {}
        self._starting: dict[str, str] = {}  # job id → user id, while its lease is being claimed
        self._kick = asyncio.Event()
        self._stopping = False
        self.finished: dict[str, str | None] = {}

    @property
    def owner(self) -> str:
        return self.deps.owner

    def runner(self, job_id: str) -> JobRunner | None:
        entry = self.running.get(job_id)
        return entry.runner if entry else None

    def jobs_per_user(self) -> dict[str, int]:
        """Jobs running (or being started) here per user."""
        counts: dict[str, int] = {}
        users = [e.runner.user_id for e in self.running.values()] + list(self._starting.values())
        for user in users:
            counts[user] = counts.get(user, 0) + 1
        return counts

    async def try_start(self, job_id: str, user_id: str | None = None, *, cancelling: bool = False) -> bool:
        """Claim the job's lease if it is free and start running it here, when admission allows: within
        ``max_jobs`` and ``max_jobs_per_user`` for ``user_id`` (looked up when not given), or always when its cancel
        was requested (``cancelling``: the runner only writes the terminal state)."""
        if self._stopping or job_id in self.running or job_id in self._starting:
            return False
        if user_id is None:
            doc = await self.deps.repo.get_job(job_id, {"user_id": 1, "cancel_requested": 1})
            if doc is None:
                return False
            user_id = str(doc.get("user_id"))
            cancelling = cancelling or bool(doc.get("cancel_requested"))
        return await self._start(Candidate(job_id, user_id, cancelling))

    async def _start(self, job: Candidate) -> bool:
        if self._stopping or job.job_id in self.running or job.job_id in self._starting:
            return False
        limits = {"max_jobs": self.max_jobs, "per_user": self.max_jobs_per_user}
        if not job.cancel_requested and not admit(job.user_id, self.jobs_per_user(), **limits):
            return False
        self._starting[job.job_id] = job.user_id  # counted from here: concurrent starts see it
        try:
            now = self.deps.clock()
            doc = await self.deps.repo.claim(job.job_id, self.owner, now, self.deps.config.lease_ttl)
        finally:
            self._starting.pop(job.job_id, None)
        if doc is None or job.job_id in self.running:  # not claimable, or claimed by another path of ours
            return False
        runner = new_runner(doc, self.deps, self.batch)  # a batch-mode job gets the batch runner
        task = asyncio.create_task(self._run(runner), name=f"job:{job.job_id}")
        self.running[job.job_id] = _Running(runner, task)
        log.info("job %s of user %s claimed (run %s)", job.job_id, runner.user_id, doc.get("run"))
        return True

    async def _run(self, runner: JobRunner) -> None:
        status: str | None = None
        try:
            status = await runner.run()
            if status in TERMINAL:
                accepted = runner.doc.get("queued_at") or runner.doc.get("created_at")
                metrics.record_job_end(status, accepted, self.deps.clock())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "runner of job %s crashed; the lease will expire and it will be resumed", runner.job_id
            )
        finally:
            self.running.pop(runner.job_id, None)
            self.finished[runner.job_id] = status
            if len(self.finished) > 10_000:
                self.finished.pop(next(iter(self.finished)))
            self._kick.set()

    def cancel_local(self, job_id: str, *, drain: bool = True) -> bool:
        """Cancel the job if it runs here; ``drain`` False abandons its calls at the provider at once."""
        entry = self.running.get(job_id)
        if entry is None:
            return False
        entry.runner.cancel(drain=drain)
        return True

    async def wait(self, job_id: str, wait_s: float | None = None) -> str | None:
        """Wait for the local runner of ``job_id`` to end (tests, shutdown)."""
        entry = self.running.get(job_id)
        if entry is not None:
            await asyncio.wait_for(asyncio.shield(entry.task), wait_s)
        return self.finished.get(job_id)

    async def sweep_once(self) -> int:
        """Start claimable jobs (queued, or whose lease expired) as admission allows, user by user in turn; users
        already at ``max_jobs_per_user`` are not even read (except their cancelled jobs)."""
        if self._stopping:
            return 0
        running = self.jobs_per_user()
        free = self.max_jobs - sum(running.values())
        full = frozenset(u for u, n in running.items() if n >= self.max_jobs_per_user)
        found = await self.deps.repo.claimable(self.deps.clock(), max(64, 4 * free), full)
        if free <= 0:
            found = [c for c in found if c.cancel_requested]
        picked = pick_admissions(found, running, max_jobs=self.max_jobs, per_user=self.max_jobs_per_user)
        started = 0
        for job in picked:
            if await self._start(job):
                started += 1
        return started

    async def run(self, stop: asyncio.Event) -> None:
        """Background loop: resume expired leases now and every ``sweep_interval_s`` until ``stop``."""
        try:
            while not stop.is_set():
                try:
                    await self.sweep_once()
                except Exception as exc:
                    log.warning("lease sweep failed: %s", exc)
                stopper = asyncio.create_task(stop.wait())
                kicker = asyncio.create_task(self._kick.wait())
                await asyncio.wait(
                    {stopper, kicker}, timeout=self.sweep_interval_s, return_when=asyncio.FIRST_COMPLETED
                )
                for t in (stopper, kicker):
                    t.cancel()
                self._kick.clear()
        finally:
            await self.shutdown()

    async def shutdown(self, grace_s: float = 10.0) -> None:
        """Pause every runner (no terminal state; leases released so another instance resumes at once)."""
        self._stopping = True
        entries = list(self.running.values())
        for entry in entries:
            entry.runner.pause()
        if entries:
            _done, pending = await asyncio.wait([e.task for e in entries], timeout=grace_s)
            for t in pending:
                t.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*pending, return_exceptions=True)
