"""Typed base settings. Build them in ``bootstrap()``/lifespan, never at import time."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_INTERNAL_TOKEN_CHARS = 24
_PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "password", "xxx", "todo"}


KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSettings(BaseSettings):
    """Where Kafka is and how to authenticate to it: every client (FastStream brokers, aiokafka producers,
    consumers and admin clients in services, scripts, benchmarks and tests) is built from these through
    ``llmts_common.kafka_security``. A script reads them from the environment with ``KafkaSettings()``."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092", description="Comma-separated host:port list."
    )
    kafka_security_protocol: KafkaSecurityProtocol = Field(
        default="PLAINTEXT",
        description="PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL (SASL over TLS: what a secured Strimzi or "
        "managed Kafka listener expects).",
    )
    kafka_sasl_mechanism: KafkaSaslMechanism = Field(
        default="SCRAM-SHA-512",
        description="SASL mechanism with a SASL_* protocol: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.",
    )
    kafka_sasl_username: str | None = Field(
        default=None, description="SASL user (required with a SASL_* protocol)."
    )
    kafka_sasl_password: SecretStr | None = Field(
        default=None, description="SASL password (required with a SASL_* protocol; never logged)."
    )
    kafka_ssl_cafile: str | None = Field(
        default=None,
        description="PEM file of the CA(s) that signed the brokers' certificates (SSL / SASL_SSL); unset "
        "trusts the system CAs. Broker host names are always verified.",
    )
    kafka_ssl_certfile: str | None = Field(
        default=None, description="PEM client certificate for mutual TLS (may also hold the key)."
    )
    kafka_ssl_keyfile: str | None = Field(
        default=None, description="PEM private key of KAFKA_SSL_CERTFILE, if not in the same file."
    )
    kafka_ssl_key_password: SecretStr | None = Field(
        default=None, description="Password of an encrypted KAFKA_SSL_KEYFILE."
    )

    @field_validator(
        "kafka_sasl_username",
        "kafka_sasl_password",
        "kafka_ssl_cafile",
        "kafka_ssl_certfile",
        "kafka_ssl_keyfile",
        "kafka_ssl_key_password",
        mode="before",
    )
    @classmethod
    def _kafka_blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _kafka_security_consistent(self) -> Self:
        protocol = self.kafka_security_protocol
        sasl = protocol.startswith("SASL_")
        tls = protocol.endswith("SSL")
        if sasl and (not self.kafka_sasl_username or self.kafka_sasl_password is None):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        if not sasl and (self.kafka_sasl_username or self.kafka_sasl_password is not None):
            raise ValueError(
                f"KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD are set but KAFKA_SECURITY_PROTOCOL={protocol} "
                "does not use them (SASL_SSL or SASL_PLAINTEXT?)"
            )
        tls_files = (self.kafka_ssl_cafile, self.kafka_ssl_certfile, self.kafka_ssl_keyfile)
        if not tls and any(tls_files):
            raise ValueError(
                f"KAFKA_SSL_* files are set but KAFKA_SECURITY_PROTOCOL={protocol} does not use TLS "
                "(SSL or SASL_SSL?)"
            )
        if self.kafka_ssl_keyfile and not self.kafka_ssl_certfile:
            raise ValueError("KAFKA_SSL_KEYFILE needs KAFKA_SSL_CERTFILE")
        return self


class BaseServiceSettings(KafkaSettings):
    """Settings every service shares. Subclass per service; env var names are the upper-case field names."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    service_name: str = Field(
        default="llmts", description="Service name in logs, traces and the default database."
    )
    environment: Literal["dev", "test", "prod"] = Field(
        default="dev", description="prod refuses placeholder secrets."
    )
    http_host: str = Field(
        default="127.0.0.1",
        validation_alias=AliasChoices("HTTP_HOST"),
        description="Bind address (0.0.0.0 in containers).",
    )
    http_port: int = Field(default=8000, ge=0, le=65535, description="HTTP port.")

    kafka_client_id: str | None = Field(
        default=None, description="Kafka client id; default the service name."
    )
    kafka_group_id: str = Field(default="", description="Consumer group id; default llmts-<service>.")
    kafka_topic_prefix: str = Field(
        default="",
        description="Prefix of every topic name, to isolate deployments sharing one Kafka cluster.",
    )
    kafka_consumer_max_attempts: int = Field(default=3, ge=1, description="Handler attempts before the DLQ.")

    mongo_url: SecretStr = Field(
        default=SecretStr("mongodb://127.0.0.1:27017"),
        description="MongoDB connection string (may hold credentials).",
    )
    mongo_db: str = Field(default="", description="Database of this service; defaults to llmts_<service>.")
    mongo_server_selection_timeout_ms: int = Field(
        default=5000, description="How long a Mongo call waits for a server."
    )

    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_json: bool = Field(
        default=True, description="JSON log lines (with trace and correlation ids) on stdout."
    )

    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP endpoint; unset = no export."
    )
    otel_console: bool = Field(default=False, description="Also print spans to stdout (debugging).")

    jwks_url: str = Field(
        default="http://127.0.0.1:8001/.well-known/jwks.json",
        description="Where access-token public keys are fetched.",
    )
    jwt_issuer: str = Field(default="llmts-auth", description="Expected `iss` of access tokens.")
    jwt_audience: str = Field(default="llmts", description="Expected `aud` of access tokens.")

    internal_token: SecretStr | None = Field(
        default=None,
        description="Shared secret of the service-to-service routes (header X-Internal-Token). Unset: every "
        "internal route answers 403; prod refuses to start without it. `make run` generates one into "
        "var/internal_token.",
    )

    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The gateway's address as clients outside the cluster reach it (scheme://host[:port], no "
        "trailing path): events carry absolute links below it — `dataschema` (<base>/schemas/…) and the signed "
        "download link of `ExportReady` (<base>/downloads/…).",
    )

    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Requests above this answer 413.")
    max_json_depth: int = Field(default=64, ge=4, description="JSON bodies nested deeper answer 422.")
    shutdown_grace_seconds: float = Field(
        default=25.0,
        ge=0,
        description="On SIGTERM, how long in-flight work may finish before the process exits.",
    )

    @property
    def schema_base_url(self) -> str:
        return f"{self.public_base_url.rstrip('/')}/schemas"

    @property
    def consumer_group(self) -> str:
        return self.kafka_group_id or f"llmts-{self.service_name}"

    @property
    def database_name(self) -> str:
        return self.mongo_db or f"llmts_{self.service_name}"

    @field_validator("internal_token", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _internal_token_in_prod(self) -> Self:
        if self.environment == "prod":
            if self.internal_token is None:
                raise ValueError("INTERNAL_TOKEN is required when ENVIRONMENT=prod")
            reject_placeholder(self.internal_token, "INTERNAL_TOKEN", environment=self.environment)
            if len(self.internal_token.get_secret_value()) < MIN_INTERNAL_TOKEN_CHARS:
                raise ValueError(f"INTERNAL_TOKEN must have at least {MIN_INTERNAL_TOKEN_CHARS} characters")
        return self

    @model_validator(mode="after")
    def _kafka_password_in_prod(self) -> Self:
        reject_placeholder(self.kafka_sasl_password, "KAFKA_SASL_PASSWORD", environment=self.environment)
        return self

    @property
    def internal_token_value(self) -> str | None:
        return self.internal_token.get_secret_value() if self.internal_token else None

    @field_validator("mongo_url")
    @classmethod
    def _no_placeholder(cls, v: SecretStr) -> SecretStr:
        if v.get_secret_value().strip().lower() in _PLACEHOLDER_SECRETS:
            raise ValueError("placeholder value is not a valid secret")
        return v


def reject_placeholder(value: SecretStr | None, name: str, *, environment: str) -> None:
    """Raise when a secret still holds a placeholder in production."""
    if environment != "prod" or value is None:
        return
    if value.get_secret_value().strip().lower() in _PLACEHOLDER_SECRETS:
        raise ValueError(f"{name} holds a placeholder value; set a real secret")
