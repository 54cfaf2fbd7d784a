"""Outbox lookups on the MongoDB-wire server: an accepted command is found by its id, and recent commands by
type and data fields, newest first (what the gateway answers ``queued`` from)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from llmts_common.contracts import (
    GenerationCancelRequested,
    GenerationRequested,
    ModelRef,
    Prompts,
    TemplateSnapshot,
)
from llmts_common.kafka import EventPublisher, create_broker
from llmts_common.mongo import Database
from llmts_common.outbox import Outbox


def _outbox(db: Database) -> Outbox:
    # add/get/find_recent never touch Kafka: the broker is never started
    broker = create_broker("127.0.0.1:9", client_id="outbox-test")
    return Outbox(db[Outbox.COLLECTION], EventPublisher(broker, source="gateway"))


def _requested(job_id: str, user_id: str) -> GenerationRequested:
    return GenerationRequested(
        job_id=job_id,
        user_id=user_id,
        template=TemplateSnapshot(
            id="t",
            version=2,
            name="n",
            owner_id=user_id,
            prompts=Prompts(user="hi"),
            schema={"type": "object"},
        ),
        model=ModelRef(provider="openrouter", id="openai/gpt-4o-mini"),
        count=4,
        requested_at=datetime.now(UTC),
    )


async def test_get_finds_a_command_by_its_id_published_or_not(db: Database) -> None:
    outbox = _outbox(db)
    job_id = uuid.uuid4().hex
    command = _requested(job_id, "u1")
    await outbox.add(command, message_id=job_id, topic="test.topic")
    stored = await outbox.get(job_id)
    assert stored is not None
    assert (stored.envelope.id, stored.envelope.type, stored.topic) == (
        job_id,
        GenerationRequested.TYPE,
        "test.topic",
    )
    assert stored.published is False
    assert GenerationRequested.from_envelope(stored.envelope) == command
    assert stored.created_at.tzinfo is not None
    await db[Outbox.COLLECTION].update_one({"_id": job_id}, {"$set": {"published": True}})
    again = await outbox.get(job_id)
    assert again is not None
    assert again.published is True
    assert await outbox.get(uuid.uuid4().hex) is None


async def test_find_recent_matches_type_and_data_newest_first(db: Database) -> None:
    outbox = _outbox(db)
    since = datetime.now(UTC) - timedelta(minutes=1)
    first, second, other_user = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
    await outbox.add(_requested(first, "alice"), message_id=first)
    await outbox.add(_requested(second, "alice"), message_id=second)
    await outbox.add(_requested(other_user, "bob"), message_id=other_user)
    await outbox.add(GenerationCancelRequested(job_id=first, user_id="alice"))

    mine = await outbox.find_recent(GenerationRequested.TYPE, since=since, data={"user_id": "alice"})
    assert [m.envelope.id for m in mine] == [second, first]
    one = await outbox.find_recent(GenerationRequested.TYPE, since=since, data={"job_id": first})
    assert [m.envelope.id for m in one] == [first]
    cancels = await outbox.find_recent(GenerationCancelRequested.TYPE, since=since, data={"job_id": first})
    assert [m.envelope.data["job_id"] for m in cancels] == [first]
    assert (
        await outbox.find_recent(GenerationRequested.TYPE, since=datetime.now(UTC) + timedelta(minutes=1))
        == []
    )
    limited = await outbox.find_recent(GenerationRequested.TYPE, since=since, limit=1)
    assert [m.envelope.id for m in limited] == [other_user]
