"""Settings of the catalog service (env vars; built in bootstrap, never at import)."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from llmts_common.settings import BaseServiceSettings


class CatalogSettings(BaseServiceSettings):
    service_name: str = "catalog"
    http_port: int = Field(
        default=8002, ge=0, le=65535, validation_alias=AliasChoices("CATALOG_PORT", "HTTP_PORT")
    )
