"""A Kafka broker of its own with a SASL_SSL listener, for the secured-Kafka tests.

Certificates are made at test time with ``cryptography`` (a CA, and a server certificate for 127.0.0.1 signed by
it); the SCRAM-SHA-512 user is created when the storage is formatted (``--add-scram``); PLAIN is enabled for the same
user and password. The broker runs from the
jars ``scripts/infra.sh`` caches (``~/.cache/llmts/kafka-<version>/lib``) on free ports with its own data
directory, so the shared broker on 9092 is never touched. Listeners: ``SASL_SSL`` for the clients under test,
a plaintext one for the broker itself and the KRaft controller, both on 127.0.0.1 only.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]
KAFKA_VERSION = os.environ.get("KAFKA_VERSION", "4.1.1")
CACHE_DIR = Path(os.environ.get("LLMTS_CACHE_DIR", Path.home() / ".cache" / "llmts"))
CLUSTER_ID = "c2VjdXJlZC1sbG10cy10ZXN0"  # 22-char base64, any value works for a fresh data dir
START_TIMEOUT_S = 45.0


@dataclass(frozen=True)
class SecuredKafka:
    bootstrap: str
    cafile: Path
    username: str
    password: str
    log: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_certificates(directory: Path) -> tuple[Path, Path]:
    """A CA (``ca.pem``) and a server key + certificate chain for 127.0.0.1/localhost (``server.pem``)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("llmts test CA"))
        .issuer_name(_name("llmts test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    cafile = directory / "ca.pem"
    cafile.write_bytes(ca.public_bytes(pem))
    server = directory / "server.pem"
    server.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(pem)
        + ca.public_bytes(pem)
    )
    return cafile, server


def _properties(
    directory: Path, server_pem: Path, ports: tuple[int, int, int], *, username: str, password: str
) -> Path:
    client, internal, controller = ports
    props = directory / "server.properties"
    props.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{controller}",
                f"listeners=SASL_SSL://127.0.0.1:{client},BROKER://127.0.0.1:{internal},"
                f"CONTROLLER://127.0.0.1:{controller}",
                f"advertised.listeners=SASL_SSL://127.0.0.1:{client},BROKER://127.0.0.1:{internal}",
                "listener.security.protocol.map=SASL_SSL:SASL_SSL,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=BROKER",
                "controller.listener.names=CONTROLLER",
                "sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN",
                "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                # PLAIN checks against the users listed here (SCRAM against the credentials made at format time)
                "listener.name.sasl_ssl.plain.sasl.jaas.config="
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'user_{username}="{password}";',
                "ssl.keystore.type=PEM",
                f"ssl.keystore.location={server_pem}",
                f"log.dirs={directory / 'data'}",
                "num.partitions=1",
                "auto.create.topics.enable=true",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "transaction.state.log.num.partitions=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "share.coordinator.state.topic.num.partitions=1",
                "group.initial.rebalance.delay.ms=0",
                "num.network.threads=1",
                "num.io.threads=1",
                "",
            ]
        )
    )
    return props


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def secured_kafka(directory: Path, *, username: str, password: str) -> Iterator[SecuredKafka]:
    """Start the broker, yield where it is, stop it (SIGTERM, then SIGKILL) however the test ends."""
    lib = CACHE_DIR / f"kafka-{KAFKA_VERSION}" / "lib"
    if not any(lib.glob("kafka-server-*.jar")):
        subprocess.run(["bash", str(ROOT / "scripts" / "infra.sh"), "fetch"], check=True)
    cafile, server_pem = make_certificates(directory)
    ports = (free_port(), free_port(), free_port())
    props = _properties(directory, server_pem, ports, username=username, password=password)
    java = [
        os.environ.get("JAVA", "java"),
        "-Xms64m",
        "-Xmx256m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={ROOT / '.ci' / 'kafka' / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={directory}",
        "-cp",
        f"{lib}/*",
    ]
    log = directory / "kafka.log"
    subprocess.run(
        [
            *java,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            CLUSTER_ID,
            "-c",
            str(props),
            "--add-scram",
            f"SCRAM-SHA-512=[name={username},password={password}]",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    with log.open("wb") as out:
        proc = subprocess.Popen([*java, "kafka.Kafka", str(props)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (_port_open(ports[0]) and b"Kafka Server started" in log.read_bytes()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"secured test broker did not start; last log lines:\n{_tail(log)}")
            time.sleep(0.2)
        yield SecuredKafka(
            bootstrap=f"127.0.0.1:{ports[0]}", cafile=cafile, username=username, password=password, log=log
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
