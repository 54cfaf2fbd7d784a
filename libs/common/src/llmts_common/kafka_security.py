"""How every Kafka client authenticates: one place that turns :class:`KafkaSettings` into the options of a
FastStream broker (``security=``) and of raw aiokafka producers, consumers and admin clients (``**kwargs``).

- PLAINTEXT: nothing. SSL: a TLS context (``KAFKA_SSL_CAFILE`` or the system CAs, optional client
  certificate for mutual TLS; host names always verified). SASL_PLAINTEXT / SASL_SSL: PLAIN or SCRAM
  credentials, over TLS for SASL_SSL.
- The password is read from its ``SecretStr`` only here, when a client is built; it never appears in a log or
  an error message of ours.

A script or test without service settings reads the environment: ``AIOKafkaConsumer(**kafka_client_options())``.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from llmts_common.settings import KafkaSettings

_SASL_CLASSES: dict[str, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
    "PLAIN": SASLPlaintext,
    "SCRAM-SHA-256": SASLScram256,
    "SCRAM-SHA-512": SASLScram512,
}


class KafkaSecurityError(ValueError):
    """The Kafka security settings cannot be used (a TLS file is missing or unreadable)."""


def _existing(path: str | None, setting: str) -> str | None:
    if path is None:
        return None
    if not Path(path).is_file():
        raise KafkaSecurityError(f"{setting}: no such file {path!r}")
    return path


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context of an SSL / SASL_SSL connection, None for a protocol without TLS."""
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    key_password = settings.kafka_ssl_key_password
    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=_existing(settings.kafka_ssl_cafile, "KAFKA_SSL_CAFILE"),
            certfile=_existing(settings.kafka_ssl_certfile, "KAFKA_SSL_CERTFILE"),
            keyfile=_existing(settings.kafka_ssl_keyfile, "KAFKA_SSL_KEYFILE"),
            password=key_password.get_secret_value() if key_password is not None else None,
        )
    except ssl.SSLError as exc:
        raise KafkaSecurityError(
            f"KAFKA_SSL_* files cannot be loaded ({exc.reason or type(exc).__name__})"
        ) from None
    return context


def faststream_security(settings: KafkaSettings) -> BaseSecurity | None:
    """The ``security=`` of a FastStream ``KafkaBroker``."""
    protocol = settings.kafka_security_protocol
    context = ssl_context(settings)
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    username, password = _credentials(settings)
    cls = _SASL_CLASSES[settings.kafka_sasl_mechanism]
    return cls(username, password, ssl_context=context, use_ssl=protocol == "SASL_SSL")


def aiokafka_security(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments of ``AIOKafkaProducer`` / ``AIOKafkaConsumer`` / ``AIOKafkaAdminClient``."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if protocol.startswith("SASL_"):
        username, password = _credentials(settings)
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": username,
            "sasl_plain_password": password,
        }
    return options


def kafka_client_options(settings: KafkaSettings | None = None) -> dict[str, Any]:
    """``bootstrap_servers`` plus :func:`aiokafka_security`; without ``settings`` they are read from the
    environment (``KAFKA_BOOTSTRAP_SERVERS``, ``KAFKA_SECURITY_PROTOCOL``, …)."""
    settings = settings if settings is not None else KafkaSettings()
    return {
        "bootstrap_servers": bootstrap_list(settings.kafka_bootstrap_servers),
        **aiokafka_security(settings),
    }


def bootstrap_list(servers: str) -> list[str]:
    return [s.strip() for s in servers.split(",") if s.strip()]


def _credentials(settings: KafkaSettings) -> tuple[str, str]:
    # the settings validator guarantees both for a SASL_* protocol
    if settings.kafka_sasl_username is None or settings.kafka_sasl_password is None:
        raise KafkaSecurityError(
            f"KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs KAFKA_SASL_USERNAME and "
            "KAFKA_SASL_PASSWORD"
        )
    return settings.kafka_sasl_username, settings.kafka_sasl_password.get_secret_value()
