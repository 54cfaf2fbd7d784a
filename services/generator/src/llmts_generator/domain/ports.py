"""The ports the generator's runner, job manager, handlers and routes depend on. Real adapters live in
``adapters/`` (MongoDB, Kafka); unit tests pass in-memory fakes (``tests/fakes.py``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from llmts_common.contracts import Message
from llmts_common.envelope import Envelope
from llmts_generator.domain.caching import CachedAnswer
from llmts_generator.domain.fairness import Candidate


class LeaseLost(Exception):
    """A fenced write matched nothing: another process owns the job now (or it was settled)."""


def item_id(job_id: str, index: int) -> str:
    return f"{job_id}:{index:07d}"


def rejected_item_id(job_id: str, number: int) -> str:
    return f"{job_id}:r{number:07d}"


def attempt_id(job_id: str, slot: int, call: int) -> str:
    return f"{job_id}:{slot}:{call}"


class GenerationRepository(Protocol):
    """Jobs (one document per job, with a fenced lease), their ``items`` and their ``attempts`` (billing).

    Failures: :class:`LeaseLost` when a fenced write finds the job is not ours any more; a *transient* error
    (the database is away for now: :meth:`is_transient` is true for it — the Mongo adapter lets the driver's
    connection errors such as ``AutoReconnect`` through) is worth the same idempotent call again later; any other
    error is final."""

    def is_transient(self, exc: BaseException) -> bool:
        """True for a storage error that says "the database is away for now", not "this write is wrong"."""
        ...

    # --- job lifecycle --------------------------------------------------------------------------------
    async def create_job(self, doc: Mapping[str, Any]) -> bool:
        """Idempotent insert of a queued job; True if it did not exist yet."""
        ...

    async def get_job(
        self, job_id: str, projection: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None: ...

    async def request_cancel(self, job_id: str, reason: str, now: datetime) -> dict[str, Any] | None: ...

    async def reopen(self, doc: Mapping[str, Any], update: Mapping[str, Any]) -> bool:
        """Apply ``update`` (a new round) to the settled job ``doc`` if its status and round are unchanged."""
        ...

    async def claimable(
        self, now: datetime, limit: int, skip_users: frozenset[str] = frozenset()
    ) -> list[Candidate]:
        """Unsettled jobs whose lease expired (at most ``limit``), but none of ``skip_users`` unless its cancel was
        requested."""
        ...

    async def claim(self, job_id: str, owner: str, now: datetime, ttl: timedelta) -> dict[str, Any] | None:
        """Take the lease if it expired; returns the job document with ``run`` incremented, else None."""
        ...

    async def renew(self, job_id: str, owner: str, run: int, until: datetime) -> dict[str, Any] | None:
        """Extend our lease; the job's ``cancel_requested`` / ``status``, or None when the lease is lost."""
        ...

    async def release(self, job_id: str, owner: str, run: int) -> None: ...

    async def write(
        self,
        job_id: str,
        owner: str,
        run: int,
        update: Mapping[str, Any],
        extra_filter: Mapping[str, Any] | None = None,
    ) -> None:
        """A fenced update of the job document; raises :class:`LeaseLost` if it matched nothing."""
        ...

    async def write_batch(
        self, job_id: str, owner: str, run: int, seq: int, update: Mapping[str, Any]
    ) -> None:
        """The writer's fenced job update, numbered (``write_seq`` = ``seq``): applied at most once however often
        it is sent. Raises :class:`LeaseLost` if the job is not ours any more."""
        ...

    async def settle(self, job_id: str, owner: str, run: int) -> bool:
        """Mark a terminal job whose outbox is empty as settled and drop the lease."""
        ...

    # --- hot path ---------------------------------------------------------------------------------------
    async def insert_attempts(self, attempts: Sequence[dict[str, Any]]) -> None:
        """Billing records; an attempt already stored (same ``_id``) is skipped, never counted twice."""
        ...

    async def insert_orphan_attempts(self, attempts: Sequence[dict[str, Any]], run: int) -> int:
        """Attempts of a run that lost its lease, stored under a run-qualified id; returns how many."""
        ...

    async def insert_items(self, items: Sequence[dict[str, Any]], *, again: bool = False) -> None:
        """Ordered insert of consecutive items (the insert reserves the index); a taken index raises
        :class:`LeaseLost` unless ``again`` and it holds the same envelope id (our earlier try)."""
        ...

    async def pull_outbox(self, job_id: str, ids: Sequence[str]) -> None: ...

    async def set_watermarks(self, job_id: str, published_index: int, published_rejected: int) -> None: ...

    # --- state rebuilt on resume ------------------------------------------------------------------------
    async def job_items(self, job_id: str) -> list[dict[str, Any]]:
        """Every item of a job (accepted and rejected)."""
        ...

    async def attempt_totals(self, job_id: str) -> dict[str, Any]:
        """``calls``, ``item_attempts``, ``prompt_tokens``, ``completion_tokens``, ``cost_usd``, ``next_slot``
        summed over the stored attempts."""
        ...

    async def item_attempts_by_target(self, job_id: str) -> dict[int, int]:
        """Item attempts made so far per target (the next item seeds of a resumed job go on from there)."""
        ...

    # --- reads ------------------------------------------------------------------------------------------
    async def list_items(
        self, job_id: str, *, include_rejected: bool, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]: ...

    async def items_page(self, job_id: str, *, after: int, limit: int) -> list[dict[str, Any]]: ...

    async def attempts_of(self, job_id: str, *, limit: int) -> list[dict[str, Any]]: ...

    async def history(
        self, user_id: str, filters: Mapping[str, Any], *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int, dict[str, Any]]: ...


class ResponseCache(Protocol):
    """Provider answers by request (``domain/caching.cache_key``), per user. Reads see what was stored and not
    expired; ``put`` is buffered (a hot-path call never waits for it), ``flush`` makes the buffer durable."""

    async def get(self, user_id: str, key: str) -> CachedAnswer | None: ...

    async def get_many(self, user_id: str, keys: Sequence[str]) -> dict[str, CachedAnswer]:
        """The entries found among ``keys`` (a warm-up read of many keys at once)."""
        ...

    def put(self, user_id: str, key: str, answer: CachedAnswer) -> None: ...

    async def flush(self, user_id: str | None = None) -> None: ...


class EventSink(Protocol):
    """Publishes generation events (the relay side of the embedded outbox)."""

    def envelope_for(self, message: Message, *, message_id: str | None = None) -> Envelope: ...

    async def publish(self, message: Message) -> None: ...

    async def publish_many(self, envelopes: Sequence[tuple[Envelope, str]]) -> None:
        """Publish in order; returns once every record is acknowledged by the broker."""
        ...
