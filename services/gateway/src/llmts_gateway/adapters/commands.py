"""Generation commands through the gateway's :class:`~llmts_common.outbox.Outbox` (the ``CommandOutbox`` port).

Accepting is one insert (durable), then a fast publish; the outbox relay publishes whatever the fast path
missed. An accepted ``GenerationRequested`` stays readable under its job id until the outbox purges it; one the
outbox parked (e.g. over Kafka's message limit) reads as failed with the reason.
"""

from __future__ import annotations

from llmts_common.contracts import GenerationCancelRequested, GenerationReopenRequested, GenerationRequested
from llmts_common.errors import ServiceUnavailable
from llmts_common.outbox import Outbox


class OutboxCommands:
    def __init__(self, outbox: Outbox | None, *, topic: str) -> None:
        self._outbox = outbox
        self._topic = topic

    def _require(self) -> Outbox:
        if self._outbox is None:
            raise ServiceUnavailable("the command outbox is not available")
        return self._outbox

    async def enqueue(
        self,
        command: GenerationRequested | GenerationCancelRequested | GenerationReopenRequested,
        *,
        message_id: str | None = None,
    ) -> None:
        outbox = self._require()
        envelope = await outbox.add(command, message_id=message_id, topic=self._topic)
        await outbox.publish_one(envelope, self._topic)

    async def accepted_generation(self, job_id: str) -> GenerationRequested | None:
        stored = await self._require().get(job_id)
        if stored is None or stored.envelope.type != GenerationRequested.TYPE:
            return None
        return GenerationRequested.from_envelope(stored.envelope)

    async def undeliverable(self, job_id: str) -> str | None:
        stored = await self._require().get(job_id)
        return stored.parked_reason if stored is not None else None
