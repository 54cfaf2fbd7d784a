"""The publisher of a running job: what the writer made durable goes to Kafka, in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from llmts_common.contracts import GENERATION_TERMINAL_EVENTS, GenerationProgress, Message
from llmts_generator.domain.ports import EventSink, GenerationRepository
from llmts_generator.domain.progress import counted_as_published
from llmts_generator.folding import Batch
from llmts_generator.jobloop import JobAborted, JobLoop, retry_transient

log = logging.getLogger("llmts.generator.runner")

_TERMINAL_TYPES = frozenset(m.TYPE for m in GENERATION_TERMINAL_EVENTS)


class JobFlusher(JobLoop):
    """Publishes what the writer made durable, in order, and tracks the publication watermarks."""

    _name = "flusher"
    _failure = "flush failed"

    def __init__(
        self,
        repo: GenerationRepository,
        events: EventSink,
        job_id: str,
        progress: Callable[[], Message | None],
        published_index: int = -1,
        published_rejected: int = -1,
    ) -> None:
        super().__init__(job_id)
        self._repo = repo
        self._events = events
        self._progress = progress
        self._pending: list[Batch] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self.published = 0
        self.published_index = published_index
        self.published_rejected = published_rejected
        self._persisted = (published_index, published_rejected)
        self.ended = False  # the job's terminal event was published

    def enqueue(self, batch: Batch) -> None:
        self._pending.append(batch)
        self._idle.clear()
        self._wake.set()

    def unsaved_watermarks(self) -> dict[str, int]:
        """Watermarks not yet stored on the job document (the writer adds them to its next update)."""
        current = (self.published_index, self.published_rejected)
        if current == self._persisted:
            return {}
        self._persisted = current
        return {"published_index": current[0], "published_rejected": current[1]}

    async def save_watermarks(self) -> None:
        marks = (self.published_index, self.published_rejected)
        await retry_transient(
            f"job {self._job_id}: watermarks",
            lambda: self._repo.set_watermarks(self._job_id, *marks),
            self._repo.is_transient,
        )
        self._persisted = marks

    async def flush(self, batches: Sequence[Batch]) -> None:
        publish = [p for b in batches for p in b.publish]
        self.ended = self.ended or any(env.type in _TERMINAL_TYPES for env, _, _ in publish)
        if publish:
            await self._events.publish_many([(env, topic) for env, topic, _ in publish])
            self.published += len(publish)
        for b in batches:
            for item in b.items:
                index = int(item["index"])
                if index >= 0:
                    self.published_index = max(self.published_index, index)
                else:
                    self.published_rejected = max(self.published_rejected, -index - 1)
        outbox_ids = [oid for _, _, oid in publish if oid is not None]
        if outbox_ids:  # idempotent: retried while the database is away (the events are on Kafka already)
            await retry_transient(
                f"job {self._job_id}: outbox",
                lambda: self._repo.pull_outbox(self._job_id, outbox_ids),
                self._repo.is_transient,
            )

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._pending:
                batches, self._pending = self._pending, []
                try:
                    await self.flush(batches)
                except Exception as exc:
                    self.error = exc
                    log.warning("publishing for job %s failed (resume will republish): %s", self._job_id, exc)
                    self._idle.set()
                    return
                # the terminal event is the job's last word: no progress after it
                progress = None if self.ended else self._progress()
                if isinstance(progress, GenerationProgress):
                    progress = counted_as_published(
                        progress, self.published_index + 1, self.published_rejected + 1
                    )
                if progress is not None:
                    with contextlib.suppress(Exception):
                        await self._events.publish(progress)
            if not self._pending:
                self._idle.set()
                if self._closed:
                    return

    async def drain(self) -> None:
        await self._idle.wait()
        if self.error is not None:
            raise JobAborted(f"flush failed: {self.error!r}")
