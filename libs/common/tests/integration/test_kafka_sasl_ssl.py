"""Secured Kafka for real: a broker of this test's own with a SASL_SSL listener (SCRAM-SHA-512, certificates made
here; tests/support/secured_kafka.py). A service runtime's FastStream publisher and an aiokafka consumer, both
built from the KAFKA_* security settings, round-trip a message; wrong credentials, a plaintext client and a
client that does not trust the broker's CA fail at once with an error that names the cause."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka import AIOKafkaConsumer
from tests.support.names import unique, unique_db, unique_group
from tests.support.secured_kafka import SecuredKafka, secured_kafka

from llmts_common.kafka import create_broker
from llmts_common.kafka_security import (
    KafkaConnectionProblem,
    faststream_security,
    kafka_client_options,
    start_explained,
)
from llmts_common.runtime import ServiceRuntime
from llmts_common.settings import BaseServiceSettings, KafkaSettings

from .conftest import MONGO_URL

PASSWORD = "scram-" + unique(length=16)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredKafka]:
    with secured_kafka(
        tmp_path_factory.mktemp("sasl-ssl"), username="llmts-test", password=PASSWORD
    ) as kafka:
        yield kafka


def settings_for(kafka: SecuredKafka, **overrides: object) -> KafkaSettings:
    values: dict[str, object] = {
        "kafka_bootstrap_servers": kafka.bootstrap,
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": kafka.username,
        "kafka_sasl_password": kafka.password,
        "kafka_ssl_cafile": str(kafka.cafile),
    }
    return KafkaSettings.model_validate(values | overrides)


@pytest.fixture
async def runtime(broker: SecuredKafka) -> AsyncIterator[ServiceRuntime]:
    """A service runtime (what every service's bootstrap builds) configured for the secured broker."""
    settings = BaseServiceSettings.model_validate(
        settings_for(broker).model_dump()
        | {
            "kafka_sasl_password": broker.password,
            "service_name": "sasl-test",
            "mongo_url": MONGO_URL,
            "mongo_db": unique_db("sasl"),
        }
    )
    rt = ServiceRuntime(settings, configure_process=False)
    try:
        yield rt
    finally:
        await rt.mongo.drop_database(settings.database_name)
        await rt.stop()


async def test_service_publisher_and_aiokafka_consumer_round_trip_over_sasl_ssl(
    broker: SecuredKafka, runtime: ServiceRuntime
) -> None:
    await runtime.start()
    assert runtime.publisher is not None
    topic = unique("sasl.roundtrip.")
    await runtime.publisher.publish_raw(
        b'{"hello": "secured"}', topic=topic, key=b"k1", headers={"x-test": "sasl"}
    )
    consumer = AIOKafkaConsumer(
        topic,
        **kafka_client_options(settings_for(broker)),
        group_id=unique_group("sasl"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await start_explained(consumer.start, settings_for(broker))
    try:
        record = await asyncio.wait_for(consumer.getone(), timeout=20)
    finally:
        await consumer.stop()
    assert record.value == b'{"hello": "secured"}'
    assert record.key == b"k1"
    assert (("x-test", b"sasl")) in list(record.headers)


async def test_sasl_plain_over_tls_works_too(broker: SecuredKafka) -> None:
    settings = settings_for(broker, kafka_sasl_mechanism="PLAIN")
    topic = unique("sasl.plain.")
    fs = create_broker(
        settings.kafka_bootstrap_servers, client_id="sasl-plain", security=faststream_security(settings)
    )
    await start_explained(fs.start, settings)
    try:
        await fs.publish(b"plain", topic=topic)
    finally:
        await fs.stop()
    consumer = AIOKafkaConsumer(
        topic, **kafka_client_options(settings), group_id=None, auto_offset_reset="earliest"
    )
    await start_explained(consumer.start, settings)
    try:
        record = await asyncio.wait_for(consumer.getone(), timeout=20)
    finally:
        await consumer.stop()
    assert record.value == b"plain"


async def test_wrong_password_is_refused_with_a_clear_error(broker: SecuredKafka) -> None:
    settings = settings_for(broker, kafka_sasl_password="not-" + PASSWORD)
    fs = create_broker(
        settings.kafka_bootstrap_servers, client_id="sasl-wrong", security=faststream_security(settings)
    )
    try:
        with pytest.raises(KafkaConnectionProblem) as caught:
            await asyncio.wait_for(start_explained(fs.start, settings), timeout=20)
    finally:
        await fs.stop()
    message = str(caught.value)
    assert f"SASL SCRAM-SHA-512 refused for user '{broker.username}'" in message
    assert "KAFKA_SASL_USERNAME, _PASSWORD, _MECHANISM" in message
    assert "not-" + PASSWORD not in message


async def test_plaintext_client_against_the_sasl_ssl_listener_fails_clearly(broker: SecuredKafka) -> None:
    settings = KafkaSettings(kafka_bootstrap_servers=broker.bootstrap)  # PLAINTEXT
    consumer = AIOKafkaConsumer(**kafka_client_options(settings), group_id=None, request_timeout_ms=5000)
    try:
        with pytest.raises(KafkaConnectionProblem, match="KAFKA_SECURITY_PROTOCOL=PLAINTEXT: the listener"):
            await asyncio.wait_for(start_explained(consumer.start, settings), timeout=20)
    finally:
        await consumer.stop()


async def test_client_without_the_ca_does_not_trust_the_broker(broker: SecuredKafka) -> None:
    settings = settings_for(broker, kafka_ssl_cafile=None)  # system CAs: the test CA is not among them
    consumer = AIOKafkaConsumer(**kafka_client_options(settings), group_id=None, request_timeout_ms=5000)
    try:
        with pytest.raises(KafkaConnectionProblem, match=r"TLS certificate is not trusted.*KAFKA_SSL_CAFILE"):
            await asyncio.wait_for(start_explained(consumer.start, settings), timeout=20)
    finally:
        await consumer.stop()


async def test_a_service_runtime_logs_why_it_cannot_connect(
    broker: SecuredKafka, caplog: pytest.LogCaptureFixture
) -> None:
    """The runtime's Kafka start (retried while Kafka is away) names the cause in its log, not "Unable to bootstrap"."""
    settings = BaseServiceSettings.model_validate(
        settings_for(broker).model_dump()
        | {
            "kafka_sasl_password": "not-" + PASSWORD,
            "service_name": "sasl-wrong",
            "mongo_url": MONGO_URL,
            "mongo_db": unique_db("sasl"),
        }
    )
    rt = ServiceRuntime(settings, configure_process=False)
    caplog.set_level(logging.WARNING, logger="llmts.runtime")
    start = asyncio.create_task(rt.start())
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while not any("refused for user" in r.getMessage() for r in caplog.records):
            assert asyncio.get_running_loop().time() < deadline, [r.getMessage() for r in caplog.records]
            await asyncio.sleep(0.1)
    finally:
        start.cancel()
        with contextlib.suppress(BaseException):
            await start
        await rt.mongo.drop_database(settings.database_name)
        await rt.stop()
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "SASL SCRAM-SHA-512 refused for user 'llmts-test'" in logged
    assert "not-" + PASSWORD not in logged
