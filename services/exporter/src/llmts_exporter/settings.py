"""Settings of the exporter service (env vars; built in bootstrap, never at import)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field

from llmts_common.settings import BaseServiceSettings


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
    outbox_relay_interval_seconds: float = 1.0
