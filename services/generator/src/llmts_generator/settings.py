"""Settings of the generator service (env vars; built in bootstrap, never at import)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator

from llmts_common.settings import BaseServiceSettings


class GeneratorSettings(BaseServiceSettings):
    service_name: str = "generator"
    http_port: int = Field(
        default=8004, ge=0, le=65535, validation_alias=AliasChoices("GENERATOR_PORT", "HTTP_PORT")
    )

    kafka_group_id: str = Field(
        default="llmts-generator", description="Consumer group of generation.commands."
    )
    commands_topic: str = Field(
        default="generation.commands",
        description="Topic of GenerationRequested/GenerationCancelRequested (override only to isolate tests).",
    )
    commands_offset_reset: Literal["earliest", "latest"] = Field(
        default="earliest", description="Where a NEW consumer group starts on the commands topic."
    )
    instance_id: str = Field(default="", description="Names this process in leases; default host:pid.")

    # jobs and leases
    max_jobs: int = Field(default=32, ge=1, description="Jobs this process runs at the same time.")
    lease_ttl_seconds: float = Field(default=15.0, gt=0, description="A job whose lease is older is resumed.")
    lease_renew_seconds: float = Field(
        default=1.0, gt=0, description="Lease renewal (and cross-process cancel poll) period."
    )
    sweep_interval_seconds: float = Field(
        default=2.0, gt=0, description="How often expired leases are looked for."
    )
    cancel_grace_seconds: float = Field(default=1.0, ge=0, description="Wait for in-flight writes on cancel.")

    # provider calls
    provider_concurrency: str = Field(
        default="openrouter=64,ollama=4",
        description="Global limit of concurrent calls per provider, shared fairly by all jobs of the process.",
    )
    provider_concurrency_default: int = Field(default=32, ge=1)
    retry_base_seconds: float = Field(default=0.5, ge=0)
    retry_cap_seconds: float = Field(default=30.0, ge=0)
    max_provider_retries: int = Field(default=6, ge=0, description="Retries of one call on 429/5xx/timeouts.")
    max_retry_after_seconds: float = Field(default=120.0, ge=0)

    # caps
    attempt_budget_factor: float = Field(
        default=1.5,
        gt=0,
        description="Item attempts per job = ceil(N × max_attempts_per_item × factor): room to regenerate "
        "rejected items even when max_attempts_per_item is 1.",
    )
    breaker_window: int = Field(default=40, ge=1)
    breaker_min_calls: int = Field(default=20, ge=1)
    breaker_threshold: float = Field(default=0.9, gt=0, le=1)

    progress_interval_seconds: float = Field(default=0.25, ge=0.25, description="≥ 0.25 s: at most 4/s.")
    internal_token: SecretStr | None = Field(
        default=None, description="Shared secret of the internal endpoints (header X-Internal-Token)."
    )

    @field_validator("internal_token", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    def provider_limits(self) -> dict[str, int]:
        limits: dict[str, int] = {}
        for part in self.provider_concurrency.split(","):
            name, _, value = part.partition("=")
            if name.strip() and value.strip().isdigit():
                limits[name.strip().lower()] = max(1, int(value.strip()))
        return limits
