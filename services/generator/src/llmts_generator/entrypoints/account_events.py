"""Kafka subscriber of the generator on ``auth.events``: a deleted user's jobs, items and attempts go.

The user's unfinished jobs are cancelled first (flag in Mongo for runners in other processes, at once for the
ones running here, whose end is awaited up to ``grace_s``), then everything is deleted. Group
``<KAFKA_GROUP_ID>-accounts``, committed after the effect, deduplicated on the envelope id, idempotent; a message
that keeps failing goes to ``auth.events.dlq``. A job running in another process may still write for a moment
after the erase (until its next lease renewal sees the job gone).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from llmts_common.contracts import UserDeleted, topics
from llmts_common.envelope import Envelope
from llmts_common.kafka import register_consumer
from llmts_common.runtime import ServiceRuntime
from llmts_generator.domain.state import CANCEL_ACCOUNT_DELETED

log = logging.getLogger("llmts.generator.accounts")


class UserErasure(Protocol):
    async def active_jobs(self, user_id: str) -> list[str]: ...

    async def erase(self, user_id: str) -> dict[str, int]: ...


class CancelFlag(Protocol):
    async def request_cancel(self, job_id: str, reason: str, now: datetime) -> Any: ...


class LocalJobs(Protocol):
    def cancel_local(self, job_id: str, *, drain: bool = True) -> bool: ...

    async def wait(self, job_id: str, wait_s: float | None = None) -> str | None: ...


async def on_user_deleted(
    event: UserDeleted,
    *,
    erasure: UserErasure,
    repo: CancelFlag,
    manager: LocalJobs,
    clock: Callable[[], datetime],
    grace_s: float = 10.0,
) -> dict[str, int]:
    for job_id in await erasure.active_jobs(event.user_id):
        await repo.request_cancel(job_id, CANCEL_ACCOUNT_DELETED, clock())
        # drain=False: no call at the provider is awaited, nothing of the user may be written after the erase
        if manager.cancel_local(job_id, drain=False):
            with contextlib.suppress(Exception):  # its end is best effort: the erase below happens regardless
                await manager.wait(job_id, grace_s)
    erased = await erasure.erase(event.user_id)
    log.info("deleted user forgotten", extra={"user_id": event.user_id, **erased})
    return erased


def register(
    runtime: ServiceRuntime,
    *,
    erasure: UserErasure,
    repo: CancelFlag,
    manager: LocalJobs,
    clock: Callable[[], datetime],
    group_id: str,
) -> None:
    assert runtime.broker is not None
    assert runtime.publisher is not None

    async def deleted(event: UserDeleted, _: Envelope) -> None:
        await on_user_deleted(event, erasure=erasure, repo=repo, manager=manager, clock=clock)

    register_consumer(
        runtime.broker,
        topic=topics.AUTH_EVENTS,
        group_id=group_id,
        handlers={UserDeleted: deleted},
        publisher=runtime.publisher,
        processed=lambda: runtime.processed,
        max_attempts=runtime.settings.kafka_consumer_max_attempts,
        description="Cancels and erases a deleted user's jobs, items and attempts.",
    )
