"""Every Kafka client in the repository takes the KAFKA_* security settings: a raw aiokafka producer, consumer or
admin client gets its connection options from ``kafka_client_options`` (never a bare ``bootstrap_servers=``), a
FastStream broker its ``security=``. Only clients pointed at a literal, deliberately unreachable address (unit tests
of what happens when Kafka is away) are exempt. Without this, a new client would silently connect in plain text."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
SCANNED = ("libs", "services", "tests", "bench", "scripts")
RAW_CLIENTS = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient"}
# the one place a broker is built (create_broker), and the standalone example for other teams (no llmts import)
EXEMPT_FILES = {"libs/common/src/llmts_common/kafka.py", "examples/consumer.py"}


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _literal_address(call: ast.Call) -> bool:
    return bool(call.args) and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)


def problems_in(source: str, where: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        keywords = {k.arg for k in node.keywords}
        if name in RAW_CLIENTS and ("bootstrap_servers" in keywords or None not in keywords):
            found.append(f"{where}:{node.lineno}: {name} without **kafka_client_options(...)")
        if (
            name in {"create_broker", "KafkaBroker"}
            and "security" not in keywords
            and not _literal_address(node)
        ):
            found.append(f"{where}:{node.lineno}: {name} without security=faststream_security(...)")
    return found


def test_every_kafka_client_in_the_repository_uses_the_security_settings() -> None:
    found = []
    for top in SCANNED:
        for path in (ROOT / top).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if rel in EXEMPT_FILES or "/.venv/" in rel:
                continue
            found += problems_in(path.read_text(), rel)
    assert found == []


def test_the_check_catches_a_plain_client() -> None:
    plain = (
        "AIOKafkaConsumer('t', bootstrap_servers=KAFKA)\n"
        "AIOKafkaProducer(**kafka_client_options(), bootstrap_servers='x')\n"
        "create_broker(KAFKA, client_id='x')\n"
    )
    assert len(problems_in(plain, "x.py")) == 3
    secured = (
        "AIOKafkaConsumer('t', **kafka_client_options(), group_id=None)\n"
        "create_broker(KAFKA, client_id='x', security=faststream_security())\n"
        "create_broker('127.0.0.1:9', client_id='unreachable')\n"
    )
    assert problems_in(secured, "x.py") == []
