"""Settings of the gateway (env vars; built in bootstrap, never at import)."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from llmts_common.settings import BaseServiceSettings


class GatewaySettings(BaseServiceSettings):
    service_name: str = "gateway"
    http_port: int = Field(
        default=8000, ge=0, le=65535, validation_alias=AliasChoices("GATEWAY_PORT", "HTTP_PORT")
    )

    auth_url: str = "http://127.0.0.1:8001"
    catalog_url: str = "http://127.0.0.1:8002"
    templates_url: str = "http://127.0.0.1:8003"
    generator_url: str = "http://127.0.0.1:8004"
    exporter_url: str = "http://127.0.0.1:8005"
    upstream_timeout_seconds: float = 30.0

    instance_id: str = Field(
        default="0", description="Distinguishes replicas: each gateway replica fans out all events."
    )
    outbox_relay_interval_seconds: float = Field(
        default=1.0, description="How often unpublished commands are retried."
    )
    outbox_retention_hours: float = Field(
        default=24.0,
        description="Published outbox entries are kept this long (the 'queued' answer relies on them).",
    )
    max_generation_count: int = Field(default=10_000, ge=1)
    generation_commands_topic: str = Field(
        default="generation.commands",
        description="Where generation commands are published (override only to isolate tests).",
    )
