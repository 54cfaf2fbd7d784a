"""Create or update one MongoDB user per service, allowed only on that service's own database.

The services' own connection strings are the single source of the credentials: for every ``MONGO_URL_<SERVICE>``
in the environment (the ``MONGO_URL`` key of the ``llmts-<service>-mongo`` Secret), the user and password of that
URL are created (or their password and roles reset) in its auth database (``authSource``, else the URL's
database, else ``admin`` — as the driver authenticates), with
``readWrite`` on ``MONGO_DB_<SERVICE>`` or ``llmts_<service>`` and no other role. ``MONGO_ADMIN_URL`` connects as a
user allowed to manage users (``userAdminAnyDatabase``). Idempotent: run it again after a password rotation.

Run: ``python -m llmts_common.provision_mongo_users`` from any service image (the Kubernetes ``mongo-users``
component). A managed MongoDB (Atlas…) makes its users through its own API instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pymongo import MongoClient
from pymongo.uri_parser import parse_uri

SERVICES = ("gateway", "auth", "catalog", "templates", "generator", "exporter")


class CommandRunner(Protocol):
    """What is needed of a database: ``pymongo.database.Database.command``."""

    def command(self, command: str, value: Any = ..., **kwargs: Any) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class ServiceUser:
    """One service's MongoDB user."""

    service: str
    username: str
    password: str = field(repr=False)
    auth_source: str
    database: str

    @property
    def roles(self) -> list[dict[str, str]]:
        return [{"role": "readWrite", "db": self.database}]


def service_users(env: Mapping[str, str]) -> list[ServiceUser]:
    """The users named by the ``MONGO_URL_<SERVICE>`` variables that are set (at least one is required)."""
    users = []
    for service in SERVICES:
        url = env.get(f"MONGO_URL_{service.upper()}", "").strip()
        if not url:
            continue
        parsed = parse_uri(url)
        if not parsed.get("username") or not parsed.get("password"):
            raise ValueError(f"MONGO_URL_{service.upper()} has no user and password")
        options = parsed.get("options") or {}
        users.append(
            ServiceUser(
                service=service,
                username=str(parsed["username"]),
                password=str(parsed["password"]),
                auth_source=str(options.get("authSource") or parsed.get("database") or "admin"),
                database=env.get(f"MONGO_DB_{service.upper()}", "").strip() or f"llmts_{service}",
            )
        )
    if not users:
        raise ValueError("no MONGO_URL_<SERVICE> variable is set")
    return users


def ensure_user(db: CommandRunner, user: ServiceUser) -> str:
    """Create ``user`` in ``db`` (its auth source), or reset its password and roles; ``created`` or ``updated``."""
    found = db.command("usersInfo", user.username).get("users") or []
    verb = "updateUser" if found else "createUser"
    db.command(verb, user.username, pwd=user.password, roles=user.roles)
    return "updated" if found else "created"


def main() -> int:
    users = service_users(os.environ)
    admin_url = os.environ.get("MONGO_ADMIN_URL", "").strip()
    if not admin_url:
        sys.stderr.write("MONGO_ADMIN_URL is required (a user allowed to manage users)\n")
        return 2
    client: MongoClient[dict[str, Any]] = MongoClient(admin_url)
    try:
        for user in users:
            outcome = ensure_user(client[user.auth_source], user)
            sys.stdout.write(
                f"mongo user {user.username} ({user.service}): {outcome}, readWrite on {user.database}\n"
            )
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
