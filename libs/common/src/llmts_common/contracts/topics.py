"""Kafka topic names. Every topic has a dead-letter companion named ``<topic>.dlq``."""

from __future__ import annotations

from typing import Final

GENERATION_COMMANDS: Final = "generation.commands"
GENERATION_EVENTS: Final = "generation.events"
EXPORT_COMMANDS: Final = "export.commands"
EXPORT_EVENTS: Final = "export.events"
TEMPLATE_EVENTS: Final = "template.events"
CATALOG_EVENTS: Final = "catalog.events"
AUTH_EVENTS: Final = "auth.events"

ALL_TOPICS: Final[tuple[str, ...]] = (
    GENERATION_COMMANDS,
    GENERATION_EVENTS,
    EXPORT_COMMANDS,
    EXPORT_EVENTS,
    TEMPLATE_EVENTS,
    CATALOG_EVENTS,
    AUTH_EVENTS,
)

DLQ_SUFFIX: Final = ".dlq"


def dlq_topic(topic: str) -> str:
    """The dead-letter topic for ``topic``."""
    return f"{topic}{DLQ_SUFFIX}"
