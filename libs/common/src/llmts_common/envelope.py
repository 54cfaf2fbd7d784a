"""The CloudEvents-shaped envelope that wraps every Kafka message.

Wire form (JSON, one envelope per Kafka record, record key = ``subject``)::

    {"specversion": "1.0", "id": "…", "type": "llmts.generation.item_generated", "source": "generator",
     "time": "2026-11-28T10:00:00Z", "subject": "<aggregate id>", "datacontenttype": "application/json",
     "dataschema": "urn:llmts:schema:llmts.generation.item_generated:1", "schemaversion": 1,
     "traceparent": "00-…", "correlationid": "…", "data": {…}}
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def new_id() -> str:
    """A fresh unique id (uuid4, hex)."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """One message on the wire. ``id`` is unique per message and is what consumers deduplicate on."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(default_factory=new_id, description="Unique message id, used for deduplication.")
    type: str = Field(description="Message type, e.g. llmts.generation.item_generated.")
    source: str = Field(description="The service that produced the message.", examples=["generator"])
    time: datetime = Field(default_factory=utcnow)
    subject: str = Field(description="The aggregate id; also the Kafka record key.")
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str = Field(description="Schema URN of data: urn:llmts:schema:<type>:<version>.")
    schemaversion: int = Field(
        ge=1, description="Version of the data schema; versions only gain optional fields."
    )
    traceparent: str | None = Field(default=None, description="W3C trace context of the producer.")
    correlationid: str | None = Field(
        default=None, description="Request correlation id (e.g. from the REST call)."
    )
    data: dict[str, Any]


def schema_urn(message_type: str, version: int) -> str:
    return f"urn:llmts:schema:{message_type}:{version}"
