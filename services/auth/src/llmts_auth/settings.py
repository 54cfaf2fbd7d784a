"""Settings of the auth service (env vars; built in bootstrap, never at import)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator

from llmts_auth.adapters.key_encryption import parse_fernet_key, split_keys
from llmts_common.proxies import Network, parse_networks
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

    signing_keys_encryption_key: SecretStr | None = Field(
        default=None,
        description="Fernet key (32 url-safe base64-encoded bytes) that encrypts the private JWT signing keys "
        "stored in Mongo; required when ENVIRONMENT=prod. At start, keys still in plain text are encrypted with "
        "it; with keys encrypted and this unset or wrong the service refuses to start. Unset in dev/test: keys "
        "are stored in plain text.",
    )
    signing_keys_encryption_old_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated previous SIGNING_KEYS_ENCRYPTION_KEY values, used only to decrypt while the "
        "encryption key is rotated; at start every signing key found under one of them is re-encrypted with the "
        "current key.",
    )

    # passwords (argon2id; the defaults are pwdlib's/argon2-cffi's recommended parameters)
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_cost_kib: int = Field(default=65536, ge=1024)
    argon2_parallelism: int = Field(default=4, ge=1)
    password_hash_memory_budget_mib: int = Field(
        default=256,
        ge=1,
        description="Memory the password hashes may use at once; the number of concurrent argon2 hashes is "
        "this divided by ARGON2_MEMORY_COST_KIB (at least 1; 4 with the defaults, fits a 512Mi pod).",
    )
    password_hash_max_waiting: int = Field(
        default=8,
        ge=0,
        description="Password checks that may wait for a hashing slot; beyond that a login, registration or "
        "password change is refused at once with 429 and Retry-After.",
    )

    password_checks_per_address: int = Field(
        default=2,
        ge=1,
        description="Password checks (login, registration, password change, account deletion) in flight at once "
        "from one client address per replica; more are refused at once with 429 and Retry-After.",
    )

    # throttling of failed logins and registrations (see domain/throttle.py)
    login_max_failures_per_account_ip: int = Field(
        default=20, ge=1, description="Failed logins of one account from one address per window."
    )
    login_max_failures_per_ip: int = Field(
        default=50, ge=1, description="Failed logins from one client address per window, all accounts."
    )
    login_backoff_free_failures: int = Field(
        default=3,
        ge=0,
        description="Failed logins of one account from one address before each further one doubles a wait.",
    )
    login_backoff_base_seconds: float = Field(
        default=1.0, gt=0, description="The first backoff wait; it doubles with each further failure."
    )
    login_backoff_cap_seconds: float = Field(default=300.0, gt=0, description="The longest backoff wait.")
    login_failure_window_seconds: int = Field(default=900, ge=1)
    register_max_per_ip: int = Field(
        default=10, ge=1, description="Registration attempts from one client address per window."
    )
    trusted_proxies: str = Field(
        default="127.0.0.1/32,::1/128",
        description="Comma-separated CIDRs of the proxies whose X-Forwarded-For is believed (the gateway's "
        "addresses); from any other peer the peer address is the client's. Empty trusts none.",
    )

    # roles
    admin_emails: str = Field(
        default="",
        description="Comma-separated emails that get the admin role when they register or log in (the first "
        "admins); admins then grant the role through the API.",
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

    @property
    def trusted_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies)

    @property
    def admin_email_set(self) -> frozenset[str]:
        return frozenset(e.strip().lower() for e in self.admin_emails.split(",") if e.strip())

    @field_validator("signing_keys_encryption_key", "signing_keys_encryption_old_keys", mode="before")
    @classmethod
    def _blank_key_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _secrets(self) -> AuthSettings:
        reject_placeholder(self.google_client_secret, "GOOGLE_CLIENT_SECRET", environment=self.environment)
        reject_placeholder(self.github_client_secret, "GITHUB_CLIENT_SECRET", environment=self.environment)
        try:
            parse_networks(self.trusted_proxies)
        except ValueError as exc:
            raise ValueError(f"TRUSTED_PROXIES: {exc}") from exc
        self._check_signing_keys_encryption()
        return self

    def _check_signing_keys_encryption(self) -> None:
        if self.signing_keys_encryption_key is None:
            if self.environment == "prod":
                raise ValueError("SIGNING_KEYS_ENCRYPTION_KEY is required when ENVIRONMENT=prod")
            if self.signing_keys_encryption_old_keys is not None:
                raise ValueError("SIGNING_KEYS_ENCRYPTION_OLD_KEYS needs SIGNING_KEYS_ENCRYPTION_KEY")
            return
        # the key objects are built by the adapter; here only their format is checked, early and clearly
        parse_fernet_key(self.signing_keys_encryption_key.get_secret_value(), "SIGNING_KEYS_ENCRYPTION_KEY")
        for old in self.signing_keys_old_keys:
            parse_fernet_key(old, "SIGNING_KEYS_ENCRYPTION_OLD_KEYS")

    @property
    def signing_keys_old_keys(self) -> list[str]:
        old = self.signing_keys_encryption_old_keys
        return split_keys(old.get_secret_value()) if old is not None else []
