"""Settings of the exporter service (env vars; built in bootstrap, never at import)."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from llmts_common.settings import BaseServiceSettings


class ExporterSettings(BaseServiceSettings):
    service_name: str = "exporter"
    http_port: int = Field(
        default=8005, ge=0, le=65535, validation_alias=AliasChoices("EXPORTER_PORT", "HTTP_PORT")
    )
