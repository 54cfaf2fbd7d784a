"""Batch-mode jobs (``mode: "batch"``): the items go to the provider's Batch API (files + batches endpoints,
:class:`~llmts_providers.batches.OpenAIBatches`) instead of one call each.

:class:`BatchJobRunner` is a :class:`~llmts_generator.runner.JobRunner` (same lease, recovery, writer, flusher and
terminal writes) whose launch loop is a :class:`BatchDriver`:

1. plan lines: one per open slot that needs one (a repair, a fresh try, an expired line sent again) and one per new
   slot while targets are undone (exactly N, as the scheduler launches slots); each new item attempt is counted
   against the budget and the cost cap like a sync call;
2. submit them as one batch (custom id ``job/slot/call``) and, before anything else, persist the batch id and its
   lines in the job document (``batches.<id>``) — a restarted job finds them there and never submits a line again;
3. poll its batches with backoff (:class:`~llmts_generator.domain.batching.PollPolicy`), publishing progress;
4. ingest a finished batch's output and error files: each line becomes the slot's attempt (billed once: the
   attempt id is the line's custom id) and is judged like a sync answer (:func:`~llmts_generator.domain.
   evaluation.evaluate`: accept / repair / reject); expired or transiently failed lines are sent again; then
   ``ingested`` is persisted once those writes are durable;
5. repeat with a further batch (or with sync calls: ``batch_fallback: "sync"``) until every target is done or a cap
   stops the job. Cancel cancels the provider's batches and keeps what they had answered (it was paid for).

The response cache is not used by batch jobs, and the job stays on its model (no fallback switch).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmts_common.contracts import GenerationProgress
from llmts_generator.batchdriver import BatchDriver
from llmts_generator.domain import state
from llmts_generator.domain.batching import PollPolicy
from llmts_generator.domain.scheduling import Scheduler
from llmts_generator.runner import JobRunner, RunnerDeps
from llmts_generator.settings import GeneratorSettings
from llmts_generator.slots import SlotWork
from llmts_providers import ChatRequest, Provider, ProviderError
from llmts_providers.batches import BatchLineResult, BatchState, OpenAIBatches
from llmts_providers.openai_compatible import OpenAICompatibleProvider

log = logging.getLogger("llmts.generator.batch")


class BatchApi(Protocol):
    """A provider's Batch API (:class:`~llmts_providers.batches.OpenAIBatches`; unit tests pass an in-memory one)."""

    def line(self, custom_id: str, request: ChatRequest) -> dict[str, Any]: ...

    async def submit(
        self, lines: Sequence[Mapping[str, Any]], metadata: Mapping[str, str] | None = None
    ) -> BatchState: ...

    async def get(self, batch_id: str) -> BatchState: ...

    async def cancel(self, batch_id: str) -> BatchState: ...

    async def find(self, key: str, value: str, *, scan: int = 200) -> BatchState | None: ...

    async def results(self, state: BatchState) -> list[BatchLineResult]: ...


def batch_api(provider: Provider) -> BatchApi | None:
    """The Batch API of a provider that has one (the OpenAI-compatible provider), else None."""
    return OpenAIBatches(provider) if isinstance(provider, OpenAICompatibleProvider) else None


@dataclass(frozen=True)
class BatchConfig:
    poll: PollPolicy = field(default_factory=PollPolicy)
    cancel_wait_s: float = 60.0  # how long a cancel (or a stop) waits for the provider to end the batches
    max_lines: int = 50_000  # lines per provider batch (more go into several batches)
    api_for: Callable[[Provider], BatchApi | None] = batch_api

    @classmethod
    def of(cls, settings: GeneratorSettings) -> BatchConfig:
        return cls(
            poll=PollPolicy(settings.batch_poll_initial_seconds, settings.batch_poll_max_seconds),
            cancel_wait_s=settings.batch_cancel_wait_seconds,
            max_lines=settings.batch_max_lines,
        )


def new_runner(doc: Mapping[str, Any], deps: RunnerDeps, batch: BatchConfig) -> JobRunner:
    """The runner of a claimed job: a :class:`BatchJobRunner` for ``mode: "batch"``, else the sync runner."""
    try:
        mode = json.loads(doc["request"]).get("mode")
    except (KeyError, TypeError, ValueError):
        mode = None
    return BatchJobRunner(doc, deps, batch) if mode == "batch" else JobRunner(doc, deps)


class BatchJobRunner(JobRunner):
    def __init__(self, doc: Mapping[str, Any], deps: RunnerDeps, config: BatchConfig) -> None:
        super().__init__(doc, deps)
        self.request = self.request.model_copy(update={"cache": "off"})  # batch lines are not cached
        self.batch_config = config
        self.driver: BatchDriver | None = None

    async def _finish_early(
        self, current: str, status: str, code: str | None = None, reason: str | None = None
    ) -> str:
        if status == state.CANCELLED and self.driver is None:
            await self._cancel_recorded_batches()
        return await super()._finish_early(current, status, code, reason)

    async def _cancel_recorded_batches(self) -> None:
        """A job cancelled while no process ran it (its owner died): the batches it left at the provider are
        cancelled, best effort, so that they stop costing (what they had answered is not read)."""
        records = [r for r in (self.doc.get("batches") or {}).values() if not r.get("ingested")]
        if not records:
            return
        try:
            provider, _ = await self.deps.resolve_provider(self.request.model.id, self.request.model.provider)
        except Exception as exc:
            log.warning("job %s: its batches could not be cancelled: %s", self.job_id, exc)
            return
        api = self.batch_config.api_for(provider)
        if api is None:
            return
        for record in records:
            try:
                await api.cancel(str(record.get("id")))
            except ProviderError as exc:
                log.warning("job %s: batch %s not cancelled: %s", self.job_id, record.get("id"), exc)

    async def _loop(self, sched: Scheduler, slots: SlotWork) -> bool:
        self.driver = BatchDriver(self, sched, slots.ctx)
        return await self.driver.run()

    def progress_event(self, force: bool = False) -> GenerationProgress | None:
        event = super().progress_event(force)
        if event is None or self.driver is None:
            return event
        return event.model_copy(update={"batch": self.driver.progress()})

    def stopping(self) -> str | None:
        """ "pause" (shutdown, lease lost), "cancel", or None."""
        return "pause" if self._pause.is_set() else "cancel" if self._cancel.is_set() else None

    async def idle(self, seconds: float) -> None:
        """Sleep until the next poll, or until a cancel or a pause wakes the job."""
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            return
        self._wake.clear()
