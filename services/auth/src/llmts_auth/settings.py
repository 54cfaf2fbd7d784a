"""Settings of the auth service (env vars; built in bootstrap, never at import)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, model_validator

from llmts_common.settings import BaseServiceSettings, reject_placeholder


class AuthSettings(BaseServiceSettings):
    service_name: str = "auth"
    http_port: int = Field(
        default=8001, ge=0, le=65535, validation_alias=AliasChoices("AUTH_PORT", "HTTP_PORT")
    )

    # tokens
    access_token_ttl_seconds: int = Field(default=900, ge=30, description="Access-token lifetime (15 min).")
    refresh_token_ttl_seconds: int = Field(
        default=30 * 24 * 3600, ge=60, description="Refresh-token lifetime."
    )
    signing_key_cache_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long a replica signs with its cached key set before re-reading it.",
    )
    signing_key_activation_delay_seconds: float = Field(
        default=30.0, ge=0, description="A rotated-in key is published this long before it signs."
    )

    # passwords (argon2id; the defaults are pwdlib's/argon2-cffi's recommended parameters)
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_cost_kib: int = Field(default=65536, ge=1024)
    argon2_parallelism: int = Field(default=4, ge=1)

    # failed-login throttling
    login_max_failures_per_email: int = Field(default=5, ge=1)
    login_max_failures_per_ip: int = Field(default=50, ge=1)
    login_failure_window_seconds: int = Field(default=900, ge=1)
    trusted_proxy_hops: int = Field(
        default=1,
        ge=0,
        description="Proxies in front of the service that append to X-Forwarded-For (the gateway = 1); "
        "0 ignores the header and uses the peer address.",
    )

    # OAuth
    oauth_redirect_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Public base URL of the gateway; callbacks are <base>/auth/oauth/<provider>/callback.",
    )
    frontend_url: str | None = Field(
        default=None,
        description="If set, a successful OAuth login redirects here with the tokens in the fragment.",
    )
    oauth_state_ttl_seconds: int = Field(default=600, ge=30)
    oauth_http_timeout_seconds: float = Field(default=10.0, gt=0)

    google_client_id: str | None = None
    google_client_secret: SecretStr | None = None
    google_authorize_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_token_url: str = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
    google_jwks_url: str = "https://www.googleapis.com/oauth2/v3/certs"
    google_issuer: str = Field(
        default="https://accounts.google.com",
        description="Accepted id_token issuer; Google also uses 'accounts.google.com', accepted with the default.",
    )

    github_client_id: str | None = None
    github_client_secret: SecretStr | None = None
    github_authorize_url: str = "https://github.com/login/oauth/authorize"
    github_token_url: str = "https://github.com/login/oauth/access_token"  # noqa: S105 - a URL, not a secret
    github_api_url: str = "https://api.github.com"

    housekeeping_interval_seconds: float = Field(default=300.0, gt=0)

    @property
    def google_configured(self) -> bool:
        return bool(self.google_client_id and self.google_client_secret)

    @property
    def github_configured(self) -> bool:
        return bool(self.github_client_id and self.github_client_secret)

    @property
    def google_issuers(self) -> list[str]:
        if self.google_issuer == "https://accounts.google.com":
            return [self.google_issuer, "accounts.google.com"]
        return [self.google_issuer]

    @model_validator(mode="after")
    def _secrets(self) -> AuthSettings:
        reject_placeholder(self.google_client_secret, "GOOGLE_CLIENT_SECRET", environment=self.environment)
        reject_placeholder(self.github_client_secret, "GITHUB_CLIENT_SECRET", environment=self.environment)
        return self
