"""Kafka security settings: validation, and the client options built from them (FastStream and aiokafka)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import ValidationError

from llmts_common.kafka_security import (
    KafkaSecurityError,
    aiokafka_security,
    faststream_security,
    kafka_client_options,
)
from llmts_common.settings import BaseServiceSettings, KafkaSettings

PASSWORD = "s3cr3t-pa55word-value"


def sasl(protocol: str = "SASL_SSL", mechanism: str = "SCRAM-SHA-512") -> KafkaSettings:
    return KafkaSettings(
        kafka_security_protocol=protocol,
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="svc-auth",
        kafka_sasl_password=PASSWORD,
    )


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    settings = KafkaSettings()
    assert faststream_security(settings) is None
    assert aiokafka_security(settings) == {"security_protocol": "PLAINTEXT"}


def test_sasl_without_credentials_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"):
        KafkaSettings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="u")


def test_credentials_with_a_protocol_that_ignores_them_are_refused() -> None:
    with pytest.raises(ValidationError, match="does not use them"):
        KafkaSettings(kafka_sasl_username="u", kafka_sasl_password="p")


def test_tls_files_without_tls_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not use TLS"):
        KafkaSettings(kafka_ssl_cafile=str(tmp_path / "ca.pem"))


def test_keyfile_needs_certfile() -> None:
    with pytest.raises(ValidationError, match="KAFKA_SSL_KEYFILE needs KAFKA_SSL_CERTFILE"):
        KafkaSettings(kafka_security_protocol="SSL", kafka_ssl_keyfile="/k.pem")


def test_password_is_never_in_the_settings_repr() -> None:
    settings = sasl()
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings.model_dump())


def test_placeholder_password_refused_in_prod() -> None:
    with pytest.raises(ValidationError, match="KAFKA_SASL_PASSWORD holds a placeholder"):
        BaseServiceSettings(
            environment="prod",
            internal_token="x" * 32,
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_username="u",
            kafka_sasl_password="changeme",
        )


@pytest.mark.parametrize(
    ("mechanism", "cls"),
    [("PLAIN", SASLPlaintext), ("SCRAM-SHA-256", SASLScram256), ("SCRAM-SHA-512", SASLScram512)],
)
def test_sasl_ssl_mechanisms_for_faststream(mechanism: str, cls: type[BaseSecurity]) -> None:
    security = faststream_security(sasl(mechanism=mechanism))
    assert isinstance(security, cls)
    options = parse_security(security)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == mechanism
    assert options["sasl_plain_username"] == "svc-auth"
    assert options["sasl_plain_password"] == PASSWORD
    assert isinstance(options["ssl_context"], ssl.SSLContext)


def test_faststream_and_aiokafka_agree() -> None:
    for settings in (sasl(), sasl("SASL_PLAINTEXT", "PLAIN"), KafkaSettings(kafka_security_protocol="SSL")):
        fs = parse_security(faststream_security(settings))
        ak = aiokafka_security(settings)
        assert fs["security_protocol"] == ak["security_protocol"] == settings.kafka_security_protocol
        assert {k: v for k, v in fs.items() if k != "ssl_context" and v is not None} == {
            k: v for k, v in ak.items() if k != "ssl_context"
        }
        assert (fs["ssl_context"] is None) == ("ssl_context" not in ak)


def test_sasl_plaintext_has_no_tls() -> None:
    options = aiokafka_security(sasl("SASL_PLAINTEXT"))
    assert "ssl_context" not in options
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"


def test_ssl_verifies_host_names_and_certificates() -> None:
    options = aiokafka_security(KafkaSettings(kafka_security_protocol="SSL"))
    context = options["ssl_context"]
    assert context.check_hostname is True
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_missing_ca_file_is_a_clear_error(tmp_path: Path) -> None:
    settings = KafkaSettings(kafka_security_protocol="SSL", kafka_ssl_cafile=str(tmp_path / "nope.pem"))
    with pytest.raises(KafkaSecurityError, match="KAFKA_SSL_CAFILE: no such file"):
        aiokafka_security(settings)


def test_unreadable_ca_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    settings = KafkaSettings(kafka_security_protocol="SSL", kafka_ssl_cafile=str(bad))
    with pytest.raises(KafkaSecurityError, match="cannot be loaded"):
        faststream_security(settings)


def test_client_options_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "a:9093, b:9093")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "bench")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", PASSWORD)
    options = kafka_client_options()
    assert options["bootstrap_servers"] == ["a:9093", "b:9093"]
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert options["sasl_plain_username"] == "bench"
