"""Settings of the catalog service (env vars; built in bootstrap, never at import).

Besides the shared service settings and the ``CATALOG_*`` variables below, the catalog reads the provider library's
variables (``OPENROUTER_BASE_URL``, ``OPENROUTER_API_KEY``, ``OPENROUTER_APP_URL``, ``OPENROUTER_APP_TITLE``,
``OLLAMA_BASE_URL``, ``OLLAMA_API_KEY``, ``OPENAI_COMPATIBLE_*``, ``PROVIDER_TIMEOUT_SECONDS``,
``PROVIDER_CONNECT_TIMEOUT_SECONDS``): the fields are inherited from :class:`llmts_providers.ProviderSettings`, so
one object holds every knob.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import NoDecode

from llmts_common.settings import BaseServiceSettings
from llmts_providers.settings import KNOWN_PROVIDERS, ProviderSettings

DEFAULT_PROVIDERS = ("openrouter", "ollama")


class CatalogSettings(BaseServiceSettings, ProviderSettings):
    service_name: str = "catalog"
    http_port: int = Field(
        default=8002, ge=0, le=65535, validation_alias=AliasChoices("CATALOG_PORT", "HTTP_PORT")
    )

    catalog_refresh_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Re-sync every provider's model list this often (CATALOG_REFRESH_SECONDS).",
    )
    catalog_providers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_PROVIDERS),
        description="Comma list of providers whose catalogs are synced (CATALOG_PROVIDERS); unset = openrouter, "
        "ollama, and openai-compatible when OPENAI_COMPATIBLE_BASE_URL is set.",
    )
    catalog_sync_on_start: bool = Field(
        default=True, description="Run the background sync loop (the first sync right at start)."
    )
    catalog_stale_after_seconds: float | None = Field(
        default=None,
        gt=0,
        description="A catalog older than this is reported stale even without a failed sync; default 3 x refresh.",
    )
    catalog_sync_timeout_seconds: float = Field(
        default=120.0, gt=0, description="Upper bound of one provider's sync (listing + storing)."
    )
    catalog_require_auth: bool = Field(
        default=False,
        description="Verify the gateway-forwarded bearer token at the catalog too (defence in depth).",
    )
    catalog_outbox_relay_seconds: float = Field(default=2.0, gt=0)

    @field_validator("catalog_providers", mode="before")
    @classmethod
    def _providers(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [p.strip().lower() for p in value.split(",") if p.strip()]
        if isinstance(value, list):
            unknown = [p for p in value if p not in KNOWN_PROVIDERS]
            if unknown:
                raise ValueError(f"unknown provider(s) in CATALOG_PROVIDERS: {unknown}")
        return value

    @model_validator(mode="after")
    def _openai_compatible_when_configured(self) -> CatalogSettings:
        """Left unset, the providers to sync include the OpenAI-compatible server once it has a base URL."""
        if "catalog_providers" not in self.model_fields_set and self.openai_compatible_base_url:
            self.catalog_providers = [*self.catalog_providers, "openai-compatible"]
        return self

    @property
    def stale_after_seconds(self) -> float:
        return self.catalog_stale_after_seconds or 3 * self.catalog_refresh_seconds

    def provider_settings(self) -> ProviderSettings:
        """The provider library's own settings object, built from the same values."""
        return ProviderSettings.model_validate(
            {name: getattr(self, name) for name in ProviderSettings.model_fields}
        )
