"""Unique names per test run, so suites share the local Kafka and MongoDB-wire server without seeing each other."""

from __future__ import annotations

import uuid


def unique(prefix: str = "", length: int = 10) -> str:
    """``prefix`` followed by ``length`` random hex digits."""
    return f"{prefix}{uuid.uuid4().hex[:length]}"


def unique_db(name: str) -> str:
    """A database name of its own: ``llmts_test_<name>_<hex>``."""
    return unique(f"llmts_test_{name}_")


def unique_topic_prefix(name: str) -> str:
    """A ``KAFKA_TOPIC_PREFIX`` of its own: ``<name>-<hex>.`` (topics become ``<prefix><topic>``)."""
    return unique(f"{name}-") + "."


def unique_group(name: str) -> str:
    """A Kafka consumer group of its own."""
    return unique(f"{name}-test-")


def unique_user(prefix: str = "user") -> str:
    return unique(f"{prefix}-", 8)


def unique_email(prefix: str = "user", domain: str = "example.com") -> str:
    return f"{unique(prefix + '-', 12)}@{domain}"
