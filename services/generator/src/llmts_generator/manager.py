"""Owns the jobs this process runs: claims leases (on a new command, at start-up and periodically), starts a
:class:`JobRunner` per claimed job, routes cancels, and pauses everything on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from dataclasses import dataclass

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
    def __init__(self, deps: RunnerDeps, *, max_jobs: int, sweep_interval_s: float) -> None:
        self.deps = deps
        self.max_jobs = max_jobs
        self.sweep_interval_s = sweep_interval_s
        self.running: dict[str, _Running] = {}
        self._kick = asyncio.Event()
        self._stopping = False
        self.finished: dict[str, str | None] = {}

    @property
    def owner(self) -> str:
        return self.deps.owner

    def runner(self, job_id: str) -> JobRunner | None:
        entry = self.running.get(job_id)
        return entry.runner if entry else None

    async def try_start(self, job_id: str) -> bool:
        """Claim the job's lease if it is free and start running it here."""
        if self._stopping or job_id in self.running or len(self.running) >= self.max_jobs:
            return False
        now = self.deps.clock()
        doc = await self.deps.repo.claim(job_id, self.owner, now, self.deps.config.lease_ttl)
        if doc is None:
            return False
        if job_id in self.running:  # claimed concurrently by another path of this process
            return False
        runner = JobRunner(doc, self.deps)
        task = asyncio.create_task(self._run(runner), name=f"job:{job_id}")
        self.running[job_id] = _Running(runner, task)
        log.info("job %s claimed (run %s)", job_id, doc.get("run"))
        return True

    async def _run(self, runner: JobRunner) -> None:
        status: str | None = None
        try:
            status = await runner.run()
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

    def cancel_local(self, job_id: str) -> bool:
        entry = self.running.get(job_id)
        if entry is None:
            return False
        entry.runner.cancel()
        return True

    async def wait(self, job_id: str, wait_s: float | None = None) -> str | None:
        """Wait for the local runner of ``job_id`` to end (tests, shutdown)."""
        entry = self.running.get(job_id)
        if entry is not None:
            await asyncio.wait_for(asyncio.shield(entry.task), wait_s)
        return self.finished.get(job_id)

    async def sweep_once(self) -> int:
        free = self.max_jobs - len(self.running)
        if free <= 0 or self._stopping:
            return 0
        started = 0
        for job_id in await self.deps.repo.claimable(self.deps.clock(), free * 2):
            if await self.try_start(job_id):
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
