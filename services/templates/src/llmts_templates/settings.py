"""Settings of the templates service (env vars; built in bootstrap, never at import)."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from llmts_common.settings import BaseServiceSettings


class TemplatesSettings(BaseServiceSettings):
    service_name: str = "templates"
    http_port: int = Field(
        default=8003, ge=0, le=65535, validation_alias=AliasChoices("TEMPLATES_PORT", "HTTP_PORT")
    )
    catalog_url: str = Field(
        default="http://127.0.0.1:8002", description="Catalog service, for prices in preview estimates."
    )
    catalog_timeout_seconds: float = Field(default=3.0, gt=0)
    default_model: str = Field(
        default="openrouter/auto",
        description="Model a preview uses when neither request nor template names one.",
    )
    default_max_tokens: int = Field(
        default=1024, ge=1, description="Completion tokens the high cost estimate assumes without max_tokens."
    )
    outbox_relay_interval_seconds: float = Field(default=1.0, gt=0)
    tombstone_retention_seconds: float = Field(
        default=7 * 24 * 3600,
        ge=0,
        description="Deleted templates (and their versions) are purged after this.",
    )
    render_workers: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Worker processes that compile (validate) and render (preview) templates, off the event loop; "
        "one that outlives the render deadline is killed and replaced.",
    )
    dataset_max_bytes: int = Field(
        default=100 * 1024 * 1024,
        ge=1,
        description="Largest seed dataset file one upload may send (streamed to a temporary file, never held in "
        "memory); larger answers 413.",
    )
    dataset_max_rows: int = Field(default=1_000_000, ge=1, description="Most rows one seed dataset may have.")
    dataset_max_columns: int = Field(default=200, ge=1, description="Most columns one seed dataset may have.")
    datasets_per_user: int = Field(default=100, ge=1, description="Most seed datasets one user may keep.")
    dataset_spool_dir: str | None = Field(
        default=None,
        description="Where uploads are spooled while they are read (default: the system temp dir).",
    )
