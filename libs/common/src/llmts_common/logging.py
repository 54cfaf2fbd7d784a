"""Structured JSON logging with correlation and trace ids, and redaction of secrets."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter

correlation_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)

# What must never reach a log line: bearer tokens, JWTs, refresh tokens, password fields, api keys, mongo credentials.
_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-_.~+/]+=*"), r"\1[REDACTED]"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "[REDACTED_JWT]"),
    (
        re.compile(
            r"(?i)([\"']?(?:password|passwd|secret|token|refresh_token|access_token|api_key|apikey|"
            r"client_secret|authorization|code_verifier)[\"']?\s*[:=]\s*)([\"']?)[^\"'\s,}&]+"
        ),
        r"\1\2[REDACTED]",
    ),
    (re.compile(r"sk-or-[A-Za-z0-9\-]+"), "[REDACTED_KEY]"),
    (re.compile(r"(mongodb(?:\+srv)?://[^:/\s]+:)[^@\s]+@"), r"\1[REDACTED]@"),
    (re.compile(r"\$argon2[a-z]*\$[^\s\"']+"), "[REDACTED_HASH]"),
)


def redact(text: str) -> str:
    for pattern, repl in _REDACTIONS:
        text = pattern.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    """Formats the message, redacts it and freezes it, so no argument can smuggle a secret out."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not kill logging
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        for key, value in list(record.__dict__.items()):
            if key in _EXTRA_SAFE:
                continue
            if isinstance(value, str) and key not in logging.LogRecord("", 0, "", 0, "", None, None).__dict__:
                record.__dict__[key] = redact(value)
        return True


_EXTRA_SAFE = {"correlation_id", "trace_id", "span_id", "service"}


class ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.correlation_id = correlation_id_var.get()
        trace_id, span_id = _current_trace_ids()
        record.trace_id = trace_id
        record.span_id = span_id
        return True


def _current_trace_ids() -> tuple[str | None, str | None]:
    from opentelemetry import trace  # local: keeps import of this module cheap

    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None, None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def configure_logging(service: str, *, level: str = "INFO", json_output: bool = True) -> None:
    """Install one stdout handler with JSON (or plain) formatting, context ids and redaction."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(ContextFilter(service))
    handler.addFilter(RedactingFilter())
    formatter: logging.Formatter
    if json_output:
        formatter = JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s %(correlation_id)s %(trace_id)s %(span_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s [%(service)s] %(name)s: %(message)s")
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "pymongo", "httpx", "httpcore", "uvicorn.access", "faststream"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def log_extra(**kw: Any) -> dict[str, Any]:
    return {"extra": kw}
