from __future__ import annotations

import io
import json
import logging

from llmts_common.logging import RedactingFilter, configure_logging, redact


def test_redact_removes_secrets() -> None:
    jwt = "eyJhbGciOiJFZDI1NTE5In0.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJl"
    text = (
        f"Authorization: Bearer {jwt} password=hunter2hunter2 "
        '{"refresh_token": "abcDEF123", "api_key": "sk-or-v1-xyz"} '
        "mongodb://user:pw@host/db $argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"
    )
    out = redact(text)
    for secret in (jwt, "hunter2hunter2", "abcDEF123", "sk-or-v1-xyz", ":pw@", "aGFzaA"):
        assert secret not in out


def test_json_logs_carry_service_and_are_redacted(capsys: object) -> None:
    configure_logging("svc", level="INFO", json_output=True)
    root = logging.getLogger()
    stream = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    logging.getLogger("x").info("login with %s", "password=topsecret12")
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["service"] == "svc"
    assert line["level"] == "INFO"
    assert "topsecret12" not in json.dumps(line)
    assert any(isinstance(f, RedactingFilter) for f in handler.filters)
