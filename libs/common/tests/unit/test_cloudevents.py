"""The envelope as a CloudEvent: structured-mode headers, one correlation id, a traceparent on every message,
the attributes the schema requires, and absolute ``dataschema`` URLs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from pydantic import ValidationError

from llmts_common.contracts import ExportReady, ModelCatalogUpdated
from llmts_common.envelope import WIRE, Envelope, schema_url
from llmts_common.kafka import EventPublisher, envelope_headers
from llmts_common.logging import correlation_id_var
from llmts_common.tracing import span, trace_id_of


def _publisher(**kwargs: Any) -> EventPublisher:
    return EventPublisher(KafkaBroker("127.0.0.1:1"), source="exporter", **kwargs)


def _ready() -> ExportReady:
    return ExportReady(
        export_id="e1", job_id="j1", user_id="u1", format="csv", bytes=3, sha256="x", items=1,
        download_path="/exports/e1/download",
    )  # fmt: skip


def test_headers_are_structured_mode_without_ce_headers_and_one_correlation_id() -> None:
    env = _publisher().envelope_for(_ready(), correlation_id="req-1")
    headers = envelope_headers(env)
    assert headers["content-type"] == "application/cloudevents+json"
    assert not [h for h in headers if h.lower().startswith("ce_")]
    assert [h for h in headers if "correlation" in h.lower()] == ["correlation_id"]
    assert headers["correlation_id"] == "req-1" == env.correlationid
    assert headers["traceparent"] == env.traceparent


def test_a_message_made_outside_any_span_or_request_still_has_a_trace_and_a_correlation_id() -> None:
    """ExportReady (the export worker) and catalog.updated (the sync loop) are made in background tasks."""
    token = correlation_id_var.set(None)
    try:
        env = _publisher().envelope_for(ModelCatalogUpdated(provider="ollama", synced_at=datetime.now(UTC)))
    finally:
        correlation_id_var.reset(token)
    assert env.traceparent is not None
    assert trace_id_of(env.traceparent) not in (None, "0" * 32)
    assert env.correlationid == env.id
    assert envelope_headers(env)["correlation_id"] == env.id


def test_inside_a_span_the_message_continues_its_trace() -> None:
    with span("request") as s:
        env = _publisher().envelope_for(_ready())
        trace_id = f"{s.get_span_context().trace_id:032x}"
    if s.get_span_context().is_valid:  # a tracer provider is installed in this process
        assert trace_id_of(env.traceparent) == trace_id


def test_dataschema_is_an_absolute_url_below_the_public_base() -> None:
    env = _publisher(schema_base_url="https://llmts.example.com/schemas/").envelope_for(_ready())
    assert env.dataschema == "https://llmts.example.com/schemas/llmts.export.ready/v1.json"
    assert schema_url("llmts.export.ready", 2) == "http://127.0.0.1:8000/schemas/llmts.export.ready/v2.json"


def test_the_envelope_schema_requires_the_attributes_consumers_rely_on() -> None:
    required = Envelope.model_json_schema()["required"]
    for name in ("id", "specversion", "type", "source", "time"):
        assert name in required
    assert {"subject", "dataschema", "schemaversion", "data"} <= set(required)


@pytest.mark.parametrize("attribute", ["id", "specversion", "type", "source", "time"])
def test_a_received_record_without_a_required_attribute_is_invalid(attribute: str) -> None:
    """A consumer must dedupe on id: a record without one is refused (dead-lettered), never given a fresh id."""
    wire = json.loads(_publisher().envelope_for(_ready()).model_dump_json())
    del wire[attribute]
    with pytest.raises(ValidationError, match=attribute):
        Envelope.model_validate_json(json.dumps(wire), context=WIRE)
    if attribute in ("id", "specversion", "time"):  # building an envelope still fills these defaults
        Envelope.model_validate_json(json.dumps(wire))


def test_a_complete_record_is_valid_on_the_wire() -> None:
    env = _publisher().envelope_for(_ready())
    assert Envelope.model_validate_json(env.model_dump_json(), context=WIRE) == env
