"""Helpers shared by the auth service's integration tests (and the gateway's auth test)."""

from __future__ import annotations

import uuid
from typing import Any

from llmts_auth.settings import AuthSettings

BASE = "http://auth.test"


async def drop_database(settings: AuthSettings) -> None:
    """Drop a test database with a fresh client, after the app has stopped (its relay would re-create it)."""
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url.get_secret_value())
    try:
        await client.drop_database(settings.database_name)
    finally:
        await client.close()


def make_settings(**overrides: Any) -> AuthSettings:
    run = uuid.uuid4().hex[:12]
    values: dict[str, Any] = {
        "mongo_db": f"llmts_auth_test_{run}",
        "kafka_client_id": f"auth-test-{run}",
        "environment": "test",
        "log_json": True,
        # cheaper argon2 so the suite stays fast; production uses the recommended defaults
        "argon2_time_cost": 1,
        "argon2_memory_cost_kib": 8192,
        "argon2_parallelism": 1,
        "login_max_failures_per_account_ip": 3,
        "login_max_failures_per_ip": 8,
        # every test registers from the same address; the registration throttle has its own test app
        "register_max_per_ip": 100_000,
        "signing_key_cache_seconds": 0,
        "signing_key_activation_delay_seconds": 0,
        "oauth_redirect_base_url": "http://127.0.0.1:8000",
        "shutdown_grace_seconds": 2,
    }
    values.update(overrides)
    return AuthSettings(**values)


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@Example.com"


def unique_ip() -> str:
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"
