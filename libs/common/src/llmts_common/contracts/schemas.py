"""The published JSON Schemas of the events: one file per message type and version, plus the envelope and an index.

Layout (below ``docs/schemas/``, served by the gateway under ``/schemas/``, the ``dataschema`` of every envelope)::

    envelope.json                      the CloudEvent envelope (structured mode), data left open
    index.json                         every message: type, version, topic, key field, schema path
    <type>/v<version>.json             the JSON Schema of ``data`` of that message version

A file of a version, once committed, changes only compatibly (:mod:`llmts_common.contracts.compat`); a breaking
change of a message bumps its ``VERSION`` and so writes a new file beside the old one, which stays published.
"""

from __future__ import annotations

import json
from typing import Any, Final

from llmts_common.contracts import ALL_MESSAGES, Message
from llmts_common.envelope import Envelope, schema_path

DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
ENVELOPE_FILE: Final = "envelope.json"
INDEX_FILE: Final = "index.json"


def data_schema(message: type[Message]) -> dict[str, Any]:
    """The JSON Schema of ``data`` of ``message`` (what its producer serializes), self-contained (``$defs``)."""
    schema = message.model_json_schema(mode="serialization")
    head = {
        "$schema": DIALECT,
        "title": message.TYPE,
        "description": (message.__doc__ or message.__name__).strip().splitlines()[0],
        "x-llmts-type": message.TYPE,
        "x-llmts-version": message.VERSION,
        "x-llmts-topic": message.TOPIC,
        "x-llmts-key": message.KEY_FIELD,
    }
    schema.pop("title", None)
    schema.pop("description", None)
    return {**head, **schema}


def envelope_schema() -> dict[str, Any]:
    schema = Envelope.model_json_schema(mode="serialization")
    schema.pop("title", None)
    return {
        "$schema": DIALECT,
        "title": "llmts event envelope (CloudEvents 1.0, structured mode)",
        "description": "The Kafka record value of every message (content-type application/cloudevents+json). "
        "`data` follows the schema at `dataschema`.",
        **schema,
    }


def index() -> dict[str, Any]:
    return {
        "envelope": ENVELOPE_FILE,
        "messages": [
            {
                "type": m.TYPE,
                "version": m.VERSION,
                "topic": m.TOPIC,
                "key": m.KEY_FIELD,
                "name": m.__name__,
                "schema": schema_path(m.TYPE, m.VERSION),
            }
            for m in sorted(ALL_MESSAGES, key=lambda m: m.TYPE)
        ],
    }


def render(schema: dict[str, Any]) -> str:
    """The file text of a schema (stable: sorted keys, two-space indent, trailing newline)."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def current_files() -> dict[str, str]:
    """Relative path -> text of every schema file the code defines now (current versions only)."""
    files = {ENVELOPE_FILE: render(envelope_schema()), INDEX_FILE: render(index())}
    for m in ALL_MESSAGES:
        files[schema_path(m.TYPE, m.VERSION)] = render(data_schema(m))
    return files
