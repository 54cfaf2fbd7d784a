from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from llmts_common.contracts import (
    ALL_MESSAGES,
    REGISTRY,
    GenerationRequested,
    ItemGenerated,
    ModelRef,
    Prompts,
    TemplateSnapshot,
    Usage,
    topics,
)
from llmts_common.envelope import Envelope

NAMED_IN_ARCHITECTURE = {
    "GenerationRequested",
    "GenerationCancelRequested",
    "GenerationReopenRequested",
    "GenerationStarted",
    "ItemGenerated",
    "ItemRejected",
    "GenerationProgress",
    "GenerationCompleted",
    "GenerationFailed",
    "GenerationCancelled",
    "ExportRequested",
    "ExportReady",
    "ExportFailed",
    "TemplateCreated",
    "TemplateUpdated",
    "TemplateDeleted",
    "ModelCatalogUpdated",
    "UserRegistered",
    "UserDisabled",
    "UserEnabled",
    "UserDeleted",
}


def _request() -> GenerationRequested:
    return GenerationRequested(
        job_id="job-1",
        user_id="user-1",
        template=TemplateSnapshot(
            id="t1",
            version=2,
            name="Quiz",
            owner_id="user-1",
            prompts=Prompts(system="s", user="u {{ index }}"),
            schema={"type": "object"},
        ),
        model=ModelRef(provider="openrouter", id="openai/gpt-4o-mini"),
        count=5,
        requested_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_every_named_message_exists_with_unique_type_and_known_topic() -> None:
    assert {m.__name__ for m in ALL_MESSAGES} == NAMED_IN_ARCHITECTURE
    assert len(REGISTRY) == len(ALL_MESSAGES)
    for m in ALL_MESSAGES:
        assert m.TOPIC in topics.ALL_TOPICS
        assert m.TYPE.startswith("llmts.")
        assert m.model_config.get("frozen") is True


def test_envelope_round_trip_keeps_fields_and_key() -> None:
    msg = _request()
    env = msg.to_envelope(
        source="gateway", traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01", correlationid="c1"
    )
    assert env.subject == "job-1"
    assert env.type == "llmts.generation.requested"
    assert env.dataschema == "http://127.0.0.1:8000/schemas/llmts.generation.requested/v1.json"
    wire = env.model_dump_json()
    back = Envelope.model_validate_json(wire)
    assert back == env
    again = GenerationRequested.from_envelope(back)
    assert again == msg
    assert again.template.json_schema == {"type": "object"}
    assert back.data["template"]["schema"] == {"type": "object"}


def test_messages_are_frozen() -> None:
    msg = _request()
    with pytest.raises(ValidationError):
        msg.count = 3  # type: ignore[misc]


def test_newer_producer_fields_are_ignored_by_older_consumers() -> None:
    data = ItemGenerated(
        job_id="j", user_id="u", index=0, data={"a": 1}, attempts=1, usage=Usage(), content_hash="h"
    ).model_dump(mode="json")
    data["added_in_v2"] = {"anything": True}
    assert ItemGenerated.model_validate(data).index == 0


def test_invalid_payload_is_rejected() -> None:
    with pytest.raises(ValidationError):
        GenerationRequested.model_validate({"job_id": "j"})
    with pytest.raises(ValidationError):
        ModelRef(id="x", temperature=5)


def test_dlq_names() -> None:
    assert topics.dlq_topic(topics.GENERATION_COMMANDS) == "generation.commands.dlq"
