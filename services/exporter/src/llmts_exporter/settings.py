"""Settings of the exporter service (env vars; built in bootstrap, never at import)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator

from llmts_common.settings import BaseServiceSettings
from llmts_exporter.domain.links import derive_key


class ExporterSettings(BaseServiceSettings):
    service_name: str = "exporter"
    http_port: int = Field(
        default=8005, ge=0, le=65535, validation_alias=AliasChoices("EXPORTER_PORT", "HTTP_PORT")
    )

    kafka_group_id: str = Field(
        default="llmts-exporter",
        validation_alias=AliasChoices("kafka_group_id", "EXPORTER_KAFKA_GROUP_ID"),
        description="Consumer group of export.commands and generation.events (one group, two topics).",
    )

    export_store: Literal["gridfs", "dir"] = Field(
        default="gridfs", description="Where files live: MongoDB GridFS (default) or a directory."
    )
    export_dir: str = Field(default="var/exports", description="Directory of the 'dir' store.")
    export_gridfs_bucket: str = Field(default="export_files", description="GridFS bucket name.")

    export_wait_for_job_seconds: float = Field(
        default=600.0,
        ge=0,
        description="How long an export waits for its job to end (and its items to arrive) before failing.",
    )
    export_recheck_seconds: float = Field(
        default=1.0, gt=0, description="How often a waiting export looks at its job again."
    )
    export_lease_seconds: float = Field(
        default=15.0,
        gt=0,
        description=(
            "A running export whose lease is older is re-run (crash recovery); renewed every fifth of it, so a"
            " killed exporter's exports are taken over within this time after the kill."
        ),
    )
    export_max_attempts: int = Field(default=5, ge=1, description="Runs of one export before it fails.")
    export_concurrency: int = Field(default=4, ge=1, le=64, description="Exports built at the same time.")
    export_page_size: int = Field(default=1000, ge=1, le=100_000, description="Items read per Mongo page.")
    export_ttl_days: float = Field(default=7.0, gt=0, description="Exports older than this are deleted.")
    export_cleanup_interval_seconds: float = Field(default=3600.0, gt=0)
    processed_retention_days: float = Field(
        default=14.0, gt=0, description="How long consumed message ids are kept for deduplication."
    )
    export_link_key: SecretStr | None = Field(
        default=None,
        description="Key of the signed download links in ExportReady (HMAC-SHA256; ≥ 16 characters, from a "
        "Secret). Unset: derived from INTERNAL_TOKEN (so every exporter replica of a deployment agrees); with "
        "neither, ExportReady carries no link.",
    )
    export_link_ttl_seconds: float = Field(
        default=86_400.0,
        ge=60,
        description="How long a signed download link works (the link is in the event: keep it short-lived).",
    )
    outbox_relay_interval_seconds: float = 1.0

    @field_validator("export_link_key", mode="before")
    @classmethod
    def _blank_link_key_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("export_link_key")
    @classmethod
    def _link_key_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("EXPORT_LINK_KEY must have at least 16 characters")
        return value

    @property
    def link_key(self) -> bytes | None:
        """The key of the signed download links (``EXPORT_LINK_KEY``, else derived from ``INTERNAL_TOKEN``)."""
        if self.export_link_key is not None:
            return self.export_link_key.get_secret_value().encode()
        token = self.internal_token_value
        return derive_key(token) if token else None
