"""Settings of the generator service (env vars; built in bootstrap, never at import)."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from llmts_common.settings import BaseServiceSettings


class GeneratorSettings(BaseServiceSettings):
    service_name: str = "generator"
    http_port: int = Field(
        default=8004, ge=0, le=65535, validation_alias=AliasChoices("GENERATOR_PORT", "HTTP_PORT")
    )
