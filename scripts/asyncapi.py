"""Generate docs/asyncapi.yaml (AsyncAPI 3.0) for every channel and message of the system from the contracts.

The document is built from ``llmts_common.contracts`` (the only place contracts live) and the producer/consumer
table below, so it cannot drift from the code: ``libs/common/tests/unit/test_asyncapi.py`` fails when the checked-in
file is out of date. Each message's payload is the CloudEvents-shaped envelope with ``data`` set to the contract's
JSON Schema.

    python scripts/asyncapi.py            # write docs/asyncapi.yaml
    python scripts/asyncapi.py --check    # exit 1 when it is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from llmts_common.contracts import ALL_MESSAGES, topics
from llmts_common.contracts.topics import dlq_topic
from llmts_common.envelope import CLOUDEVENTS_CONTENT_TYPE, Envelope

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "asyncapi.yaml"

# topic -> (producers, consumers)
FLOWS: dict[str, tuple[list[str], list[str]]] = {
    topics.GENERATION_COMMANDS: (["gateway"], ["generator"]),
    topics.GENERATION_EVENTS: (["generator"], ["gateway", "exporter"]),
    topics.EXPORT_COMMANDS: (["gateway"], ["exporter"]),
    topics.EXPORT_EVENTS: (["exporter"], ["gateway"]),
    topics.TEMPLATE_EVENTS: (["templates"], []),
    topics.CATALOG_EVENTS: (["catalog"], []),
    topics.AUTH_EVENTS: (["auth"], []),
}


def _channel_id(topic: str) -> str:
    return topic.replace(".", "_")


def build() -> dict[str, Any]:
    components_messages: dict[str, Any] = {}
    components_schemas: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    envelope_schema = Envelope.model_json_schema()
    envelope_schema.pop("title", None)
    for topic in topics.ALL_TOPICS:
        msgs = [m for m in ALL_MESSAGES if topic == m.TOPIC]
        ch = _channel_id(topic)
        channels[ch] = {
            "address": topic,
            "description": f"Kafka topic `{topic}`. Record key = the aggregate id; one envelope (JSON) per record. "
            f"Messages that keep failing go to `{dlq_topic(topic)}` with `x-dlq-*` headers.",
            "messages": {m.__name__: {"$ref": f"#/components/messages/{m.__name__}"} for m in msgs},
        }
        producers, consumers = FLOWS[topic]
        for svc in producers:
            operations[f"{svc}_send_{ch}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{ch}"},
                "summary": f"{svc} publishes to {topic}",
                "messages": [{"$ref": f"#/channels/{ch}/messages/{m.__name__}"} for m in msgs],
            }
        for svc in consumers:
            operations[f"{svc}_receive_{ch}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{ch}"},
                "summary": f"{svc} consumes {topic}",
                "messages": [{"$ref": f"#/channels/{ch}/messages/{m.__name__}"} for m in msgs],
            }
        for m in msgs:
            schema = m.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
            for name, sub in schema.pop("$defs", {}).items():
                components_schemas[name] = sub
            components_schemas[f"{m.__name__}Data"] = schema
            payload = {
                "allOf": [
                    {"$ref": "#/components/schemas/Envelope"},
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": m.TYPE},
                            "schemaversion": {"const": m.VERSION},
                            "data": {"$ref": f"#/components/schemas/{m.__name__}Data"},
                        },
                    },
                ]
            }
            components_messages[m.__name__] = {
                "name": m.__name__,
                "title": m.TYPE,
                "summary": (m.__doc__ or m.__name__).strip().splitlines()[0],
                "contentType": CLOUDEVENTS_CONTENT_TYPE,
                "headers": {
                    "type": "object",
                    "description": "Structured-mode CloudEvent: the value is the whole event, no `ce_*` headers.",
                    "properties": {
                        "content-type": {"type": "string", "const": CLOUDEVENTS_CONTENT_TYPE},
                        "traceparent": {"type": "string", "description": "W3C trace context"},
                        "correlation_id": {
                            "type": "string",
                            "description": "the envelope's `correlationid` (the only correlation header)",
                        },
                    },
                    "required": ["content-type", "traceparent", "correlation_id"],
                },
                "payload": payload,
                "bindings": {"kafka": {"key": {"type": "string", "description": f"the `{m.KEY_FIELD}`"}}},
            }
    components_schemas["Envelope"] = envelope_schema
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "LLM Template System events",
            "version": "1.0.0",
            "description": "Every channel and message of the LLM Template System. Every record is a structured-mode "
            "CloudEvent (the value is the whole event, no `ce_*` headers). Delivery is at least once; deduplicate on "
            "the envelope `id`. Within a version a schema changes only compatibly; a breaking change is a new "
            "version (`schemaversion`, a new file under `dataschema`). Consumers: docs/consuming-events.md.",
        },
        "defaultContentType": CLOUDEVENTS_CONTENT_TYPE,
        "servers": {"local": {"host": "127.0.0.1:9092", "protocol": "kafka", "description": "make infra-up"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": components_messages, "schemas": dict(sorted(components_schemas.items()))},
    }


def render() -> str:
    header = "# Generated by `make asyncapi` (scripts/asyncapi.py) from libs/common contracts. Do not edit.\n"
    return header + yaml.safe_dump(build(), sort_keys=False, allow_unicode=True, width=120)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text() != text:
            print("asyncapi: docs/asyncapi.yaml is out of date; run `make asyncapi`")
            return 1
        print("asyncapi: docs/asyncapi.yaml is current")
        return 0
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(text)
    print(f"asyncapi: wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
