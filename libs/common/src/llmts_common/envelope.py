"""The CloudEvent that wraps every Kafka message.

Wire form: CloudEvents 1.0 **structured mode** of the Kafka protocol binding — the record value is the whole event
in the JSON event format, the record header ``content-type`` is ``application/cloudevents+json``, there are no
``ce_*`` headers, and the record key is ``subject`` (the aggregate id)::

    {"specversion": "1.0", "id": "…", "type": "llmts.generation.item_generated", "source": "generator",
     "time": "2026-11-28T10:00:00Z", "subject": "<aggregate id>", "datacontenttype": "application/json",
     "dataschema": "https://<gateway>/schemas/llmts.generation.item_generated/v1.json", "schemaversion": 1,
     "traceparent": "00-…", "correlationid": "…", "data": {…}}

``schemaversion``, ``traceparent`` and ``correlationid`` are CloudEvents extension attributes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

CLOUDEVENTS_CONTENT_TYPE: Final = "application/cloudevents+json"
"""The ``content-type`` record header of a structured-mode CloudEvent."""

REQUIRED_ATTRIBUTES: Final = ("specversion", "id", "type", "source", "time")
"""Attributes every message carries (the JSON Schema requires them even though the model fills defaults)."""

WIRE: Final = {"wire": True}
"""Validation context of a record read from Kafka: the attributes of REQUIRED_ATTRIBUTES must be there (the model's
defaults are for building an envelope, never for filling in a received one — a message without ``id`` could not be
deduplicated)."""

DEFAULT_SCHEMA_BASE_URL: Final = "http://127.0.0.1:8000/schemas"
"""Where the gateway of a local stack serves the schemas (``PUBLIC_BASE_URL`` + ``/schemas``)."""


def new_id() -> str:
    """A fresh unique id (uuid4, hex)."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


def _require_attributes(schema: dict[str, Any]) -> None:
    required = list(schema.get("required", []))
    schema["required"] = [*REQUIRED_ATTRIBUTES, *(r for r in required if r not in REQUIRED_ATTRIBUTES)]


class Envelope(BaseModel):
    """One message on the wire. ``id`` is unique per message and is what consumers deduplicate on."""

    model_config = ConfigDict(frozen=True, extra="ignore", json_schema_extra=_require_attributes)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(default_factory=new_id, description="Unique message id, used for deduplication.")
    type: str = Field(description="Message type, e.g. llmts.generation.item_generated.")
    source: str = Field(description="The service that produced the message.", examples=["generator"])
    time: datetime = Field(default_factory=utcnow)
    subject: str = Field(description="The aggregate id; also the Kafka record key.")
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str = Field(
        description="URL of the JSON Schema of data: <PUBLIC_BASE_URL>/schemas/<type>/v<version>.json."
    )
    schemaversion: int = Field(
        ge=1, description="Version of the data schema; versions only gain optional fields."
    )
    traceparent: str | None = Field(default=None, description="W3C trace context of the producer.")
    correlationid: str | None = Field(
        default=None, description="Request correlation id (e.g. from the REST call)."
    )
    data: dict[str, Any]

    @model_validator(mode="before")
    @classmethod
    def _received_attributes(cls, data: Any, info: ValidationInfo) -> Any:
        if info.context and info.context.get("wire") and isinstance(data, dict):
            missing = [name for name in REQUIRED_ATTRIBUTES if name not in data]
            if missing:
                raise ValueError(f"not a CloudEvent: missing {', '.join(missing)}")
        return data


def schema_path(message_type: str, version: int) -> str:
    """Where a message's data schema lives below the schema base (``docs/schemas/`` and the gateway's
    ``/schemas/``)."""
    return f"{message_type}/v{version}.json"


def schema_url(message_type: str, version: int, base_url: str = DEFAULT_SCHEMA_BASE_URL) -> str:
    """The ``dataschema`` of a message: an absolute URL the gateway answers with the JSON Schema of ``data``."""
    return f"{base_url.rstrip('/')}/{schema_path(message_type, version)}"
