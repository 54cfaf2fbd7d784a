"""Settings of the auth service (env vars; built in bootstrap, never at import)."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from llmts_common.settings import BaseServiceSettings


class AuthSettings(BaseServiceSettings):
    service_name: str = "auth"
    http_port: int = Field(
        default=8001, ge=0, le=65535, validation_alias=AliasChoices("AUTH_PORT", "HTTP_PORT")
    )
