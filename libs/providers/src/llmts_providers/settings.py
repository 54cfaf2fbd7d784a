"""Provider settings (env vars, case-insensitive). Build it in a composition root, never at import."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["KNOWN_PROVIDERS", "ProviderSettings"]

KNOWN_PROVIDERS = ("openrouter", "ollama")


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [p.strip().lower() for p in value.split(",") if p.strip()]
    return value


class ProviderSettings(BaseSettings):
    """``OPENROUTER_*``, ``OLLAMA_*`` and ``PROVIDER_*`` environment variables."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    openrouter_base_url: str = "https://openrouter.ai/api/v1"
    openrouter_api_key: SecretStr | None = None
    openrouter_app_url: str | None = Field(default=None, description="Sent as HTTP-Referer.")
    openrouter_app_title: str | None = Field(
        default=None, description="Sent as X-OpenRouter-Title (and X-Title)."
    )

    openrouter_http_backend: Literal["aiohttp", "httpx"] = Field(
        default="aiohttp",
        description="Transport of the openai SDK for OpenRouter calls: its aiohttp transport (half the CPU per "
        "call) or its default httpx one.",
    )

    ollama_base_url: str = "http://127.0.0.1:11434"
    ollama_api_key: SecretStr | None = Field(
        default=None, description="Optional bearer token for an Ollama behind an authenticating proxy."
    )
    ollama_keep_alive: str | None = Field(
        default=None, description="keep_alive sent on /api/chat, e.g. '10m'."
    )

    provider_timeout_seconds: float = Field(default=120.0, gt=0)
    provider_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    provider_fallback_order: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma list, e.g. 'ollama,openrouter'. Empty = no fallback."
    )
    provider_fallback_models: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Model to use on each fallback provider: 'ollama=llama3.2,openrouter=openai/gpt-4o-mini'.",
    )
    provider_fallback_cooldown_seconds: float = Field(default=30.0, ge=0)

    @field_validator("provider_fallback_order", mode="before")
    @classmethod
    def _order(cls, value: Any) -> Any:
        order = _split_csv(value)
        if isinstance(order, list):
            unknown = [p for p in order if p not in KNOWN_PROVIDERS]
            if unknown:
                raise ValueError(f"unknown provider(s) in PROVIDER_FALLBACK_ORDER: {unknown}")
        return order

    @field_validator("provider_fallback_models", mode="before")
    @classmethod
    def _models(cls, value: Any) -> Any:
        if isinstance(value, str):
            out: dict[str, str] = {}
            for part in value.split(","):
                if "=" in part:
                    k, _, v = part.partition("=")
                    if k.strip() and v.strip():
                        out[k.strip().lower()] = v.strip()
            return out
        return value

    @field_validator("openrouter_api_key", "ollama_api_key", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value
