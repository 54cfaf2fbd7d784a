"""Base class for every command and event payload (the envelope's ``data``)."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict

from llmts_common.envelope import DEFAULT_SCHEMA_BASE_URL, Envelope, schema_url


class Message(BaseModel):
    """A versioned, frozen contract.

    ``TYPE``/``VERSION``/``TOPIC`` identify it on the wire; ``KEY_FIELD`` names the field holding the aggregate id,
    which becomes the envelope subject and the Kafka key so all messages of one aggregate stay ordered.
    Unknown fields are ignored on read, so a newer producer that added optional fields never breaks an older consumer.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1
    TOPIC: ClassVar[str]
    KEY_FIELD: ClassVar[str]

    def aggregate_id(self) -> str:
        return str(getattr(self, self.KEY_FIELD))

    def to_envelope(
        self,
        *,
        source: str,
        traceparent: str | None = None,
        correlationid: str | None = None,
        message_id: str | None = None,
        schema_base_url: str = DEFAULT_SCHEMA_BASE_URL,
    ) -> Envelope:
        extra: dict[str, Any] = {"id": message_id} if message_id else {}
        return Envelope(
            type=self.TYPE,
            source=source,
            subject=self.aggregate_id(),
            dataschema=schema_url(self.TYPE, self.VERSION, schema_base_url),
            schemaversion=self.VERSION,
            traceparent=traceparent,
            correlationid=correlationid,
            data=self.model_dump(mode="json"),
            **extra,
        )

    @classmethod
    def from_envelope(cls, envelope: Envelope) -> Self:
        return cls.model_validate(envelope.data)
