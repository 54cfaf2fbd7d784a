"""Settings of the templates service (env vars; built in bootstrap, never at import)."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from llmts_common.settings import BaseServiceSettings


class TemplatesSettings(BaseServiceSettings):
    service_name: str = "templates"
    http_port: int = Field(
        default=8003, ge=0, le=65535, validation_alias=AliasChoices("TEMPLATES_PORT", "HTTP_PORT")
    )
