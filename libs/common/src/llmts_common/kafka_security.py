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

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
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


class KafkaConnectionProblem(KafkaConnectionError):  # type: ignore[misc]
    """A Kafka client could not connect, with the reason in words (aiokafka only says "Unable to bootstrap")."""

    def __str__(self) -> str:  # the reason only (KafkaError prefixes its class name): log lines stay short
        return str(self.args[0]) if self.args else "cannot connect to Kafka"


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


def faststream_security(settings: KafkaSettings | None = None) -> BaseSecurity | None:
    """The ``security=`` of a FastStream ``KafkaBroker``; without ``settings`` they are read from the environment."""
    settings = settings if settings is not None else KafkaSettings()
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


async def explain_connection_failure(settings: KafkaSettings, *, timeout_s: float = 5.0) -> str | None:
    """Why a client with ``settings`` cannot talk to Kafka, in words naming the setting to check; None when
    every bootstrap server answers (the failure was elsewhere). One connection per server, bounded by
    ``timeout_s``; the password never appears in the answer."""
    options = aiokafka_security(settings)
    reasons = []
    for server in bootstrap_list(settings.kafka_bootstrap_servers):
        host, _, port = server.rpartition(":")
        try:
            conn = await asyncio.wait_for(
                create_conn(host, int(port), request_timeout_ms=int(timeout_s * 1000), **options), timeout_s
            )
        except Exception as exc:
            reasons.append(f"{server}: {_reason(exc, settings)}")
            continue
        conn.close()
    return "; ".join(reasons) or None


async def start_explained(start: Callable[[], Awaitable[Any]], settings: KafkaSettings) -> None:
    """``await start()`` (a broker's, producer's or consumer's); a connection failure is raised again as
    :class:`KafkaConnectionProblem` with the reason (wrong credentials, untrusted certificate, protocol
    mismatch, unreachable) instead of aiokafka's bare "Unable to bootstrap"."""
    try:
        await start()
    except KafkaConnectionError as exc:
        reason = await explain_connection_failure(settings)
        if reason is None:
            raise
        raise KafkaConnectionProblem(reason) from exc


def _reason(exc: BaseException, settings: KafkaSettings) -> str:
    protocol = settings.kafka_security_protocol
    if isinstance(exc, SaslAuthenticationFailed | UnsupportedSaslMechanismError):
        return (
            f"SASL {settings.kafka_sasl_mechanism} refused for user {settings.kafka_sasl_username!r} "
            "(check KAFKA_SASL_USERNAME, _PASSWORD, _MECHANISM)"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the broker's TLS certificate is not trusted ({exc.verify_message}); set KAFKA_SSL_CAFILE to the "
            "CA that signed it"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason}): does this listener speak {protocol}?"
    if isinstance(exc, KafkaConnectionError | KafkaError) and not protocol.endswith("SSL"):
        return (
            f"the broker closed the connection on the first request with KAFKA_SECURITY_PROTOCOL={protocol}: "
            "the listener probably expects TLS and/or SASL (SSL, SASL_SSL?)"
        )
    if isinstance(exc, TimeoutError):
        return "no answer in time (a TLS listener reached without TLS, or a firewall?)"
    if isinstance(exc, OSError):
        return f"unreachable ({exc.strerror or type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"
