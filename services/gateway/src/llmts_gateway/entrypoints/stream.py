"""Kafka subscribers of the gateway: job and export events fan out to the clients watching them.

Every replica must see every event (a client watches through whichever replica it reached), so these consumers
have no consumer group: each reads all partitions of the two topics itself, from the latest offset at start, and
commits nothing (live fan-out only; a (re)connecting client gets the job's state first). No group means no
per-pod group left behind in Kafka (with its lag) after a rollout, and no rebalance when replicas come and go.
"""

from __future__ import annotations

from llmts_common.contracts import (
    ALL_MESSAGES,
    ExportFailed,
    ExportReady,
    Message,
    topics,
)
from llmts_common.envelope import Envelope
from llmts_common.kafka import register_consumer
from llmts_common.runtime import ServiceRuntime
from llmts_common.times import iso_z
from llmts_gateway.adapters.hub import EventHub


def register(runtime: ServiceRuntime, hub: EventHub) -> None:
    assert runtime.broker is not None
    assert runtime.publisher is not None

    async def fan_out(message: Message, envelope: Envelope) -> None:
        event = {
            "id": envelope.id,
            "type": envelope.type,
            "time": iso_z(envelope.time),
            "data": envelope.data,
        }
        job_id = envelope.data.get("job_id")
        if isinstance(message, ExportReady | ExportFailed):
            hub.publish(f"export:{message.export_id}", event)
        if isinstance(job_id, str):
            hub.publish(f"job:{job_id}", event)

    def watched_job(key: bytes | None) -> bool:
        """Generation events are keyed by their job id: the events of a job nobody watches through this replica
        are skipped before they are decoded (under a large backlog most of them: one user's 10,000-item jobs must
        not delay the terminal event of another user's small job behind their decoding)."""
        return key is not None and hub.watchers(f"job:{key.decode('utf-8', 'replace')}") > 0

    generation_events = {m: fan_out for m in ALL_MESSAGES if m.TOPIC == topics.GENERATION_EVENTS}
    export_events = {m: fan_out for m in ALL_MESSAGES if m.TOPIC == topics.EXPORT_EVENTS}
    for topic, handlers, wanted in (
        (topics.GENERATION_EVENTS, generation_events, watched_job),
        (topics.EXPORT_EVENTS, export_events, None),
    ):
        register_consumer(
            runtime.broker,
            topic=topic,
            group_id=None,  # every replica reads every partition: see the module docstring
            handlers=handlers,
            publisher=runtime.publisher,
            auto_offset_reset="latest",
            durable_effect=False,  # live fan-out only: nothing to lose, clients replay state on (re)connect
            description=f"Fans {topic} out to WebSocket/SSE clients watching a job.",
            wanted=wanted,
        )
