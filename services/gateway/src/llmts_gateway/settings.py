"""Settings of the gateway (env vars; built in bootstrap, never at import)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, field_validator

from llmts_common.proxies import Network, parse_networks
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
    schemas_dir: str = Field(
        default="docs/schemas",
        description="Directory of the published event schemas served under /schemas/ (the `dataschema` URLs of "
        "the events); the image ships them in /app/schemas.",
    )
    session_cookie_max_age_seconds: int = Field(
        default=30 * 24 * 3600,
        ge=60,
        description="Max-Age of the web console's refresh-token cookie (/auth/session/*); keep it equal to the auth "
        "service's REFRESH_TOKEN_TTL_SECONDS (the token inside stops working then anyway).",
    )
    hsts_max_age_seconds: int = Field(
        default=0,
        ge=0,
        description="Strict-Transport-Security max-age on every answer when > 0: set it (e.g. 31536000) once the "
        "gateway is only reached over https; 0 sends no HSTS header.",
    )

    instance_id: str = Field(
        default="0",
        description="Names this replica (in Kubernetes the pod name, from the downward API): the Kafka client id "
        "is gateway-<INSTANCE_ID> unless KAFKA_CLIENT_ID is set. Fan-out needs nothing per replica: every "
        "replica reads every partition of the event topics without a consumer group.",
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

    # per-user quotas at admission (defaults; an admin overrides them per user: PUT /admin/users/{id}/quota)
    quota_max_items_per_job: int = Field(
        default=1_000, ge=0, description="Default quota: items one job may ask for (429 items_per_job)."
    )
    quota_max_active_jobs: int = Field(
        default=5,
        ge=0,
        description="Default quota: jobs of one user queued + running at once (429 active_jobs).",
    )
    quota_max_items_per_day: int = Field(
        default=10_000, ge=0, description="Default quota: items one user may have admitted per UTC day (429)."
    )
    quota_budget_usd: float = Field(
        default=5.0,
        ge=0,
        description="Default spend budget in USD per budget period: jobs reserve their estimated upper cost at "
        "admission (402 budget_exceeded when it does not fit); free and unpriced models reserve 0.",
    )
    quota_budget_period: Literal["day", "week", "month"] = Field(
        default="month", description="The budget period (UTC calendar day, ISO week from Monday, or month)."
    )
    kafka_max_message_bytes: int = Field(
        default=1_048_576,
        ge=65_536,
        description="The broker's max message size (message.max.bytes; the producer's max_request_size).",
    )
    command_size_margin_bytes: int = Field(
        default=65_536,
        ge=0,
        description="Headroom kept under kafka_max_message_bytes: a generation command larger than the "
        "difference is refused at admission (413 command_too_large).",
    )

    # accounts (services/gateway/README.md, "Accounts and admin")
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated CIDRs of the proxies in front of the gateway (an ingress) whose "
        "X-Forwarded-For is believed; empty: the TCP peer is the client, whatever its header says.",
    )
    revoked_users_refresh_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often each replica re-reads the disabled/deleted users whose tokens it refuses (the "
        "replica that consumed the event refuses at once).",
    )
    revoked_users_retention_seconds: int = Field(
        default=86_400,
        ge=60,
        description="How long a disabled/deleted user's tokens stay refused; keep it above the access-token "
        "lifetime (no token issued before the event outlives it).",
    )

    dataset_max_bytes: int = Field(
        default=100 * 1024 * 1024,
        ge=1,
        description="Largest seed dataset upload (POST /datasets) the gateway streams through to the templates "
        "service (which has the same setting); 413 past it. The body is never buffered here.",
    )

    estimate_sample_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        description='POST /generate/preview with estimate: "sample": how long the answer waits for the sample job '
        "to end (then 504 sample_timeout with its job id; the sample goes on).",
    )

    @property
    def trusted_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies)

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: str) -> str:
        parse_networks(value)  # ValueError → a settings error at start-up, not at the first request
        return value

    @property
    def max_command_bytes(self) -> int:
        return max(1, self.kafka_max_message_bytes - self.command_size_margin_bytes)
