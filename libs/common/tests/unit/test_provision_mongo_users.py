"""Per-service MongoDB users from the services' own connection strings (the mongo-users Job)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from llmts_common.provision_mongo_users import ServiceUser, ensure_user, service_users


class FakeDb:
    """Records the commands; knows the users created so far (what usersInfo answers)."""

    def __init__(self, existing: set[str] | None = None) -> None:
        self.users = set(existing or ())
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []

    def command(self, command: str, value: Any = None, **kwargs: Any) -> Mapping[str, Any]:
        self.calls.append((command, value, kwargs))
        if command == "usersInfo":
            return {"users": [{"user": value}] if value in self.users else [], "ok": 1}
        if command == "createUser":
            self.users.add(value)
        return {"ok": 1}


def test_each_url_gives_a_user_on_its_own_database_only() -> None:
    users = service_users(
        {
            "MONGO_URL_AUTH": "mongodb://llmts-auth:s3cret%2Fpw@mongo-0.mongo:27017,mongo-1.mongo:27017/"
            "?replicaSet=rs0&authSource=admin",
            "MONGO_URL_EXPORTER": "mongodb://exp:pw2@mongo:27017/llmts_exporter?authSource=llmts_exporter",
            "MONGO_URL_CATALOG": "mongodb://cat:pw3@mongo:27017/",
            "MONGO_URL_TEMPLATES": "mongodb://tpl:pw4@mongo:27017/llmts_templates",
            "MONGO_DB_CATALOG": "catalog_eu",
        }
    )
    by_service = {u.service: u for u in users}
    assert set(by_service) == {"auth", "exporter", "catalog", "templates"}
    auth = by_service["auth"]
    assert (auth.username, auth.password, auth.auth_source) == ("llmts-auth", "s3cret/pw", "admin")
    assert auth.roles == [{"role": "readWrite", "db": "llmts_auth"}]
    assert by_service["exporter"].auth_source == "llmts_exporter"
    assert by_service["templates"].auth_source == "llmts_templates"  # the URL's database, as the driver does
    assert by_service["catalog"].auth_source == "admin"
    assert by_service["catalog"].roles == [{"role": "readWrite", "db": "catalog_eu"}]
    assert "pw3" not in repr(by_service["catalog"])


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "no MONGO_URL_"),
        ({"MONGO_URL_GATEWAY": "mongodb://mongo:27017/"}, "MONGO_URL_GATEWAY has no user"),
    ],
)
def test_missing_credentials_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        service_users(env)


def test_creates_then_updates() -> None:
    db = FakeDb()
    user = ServiceUser("generator", "llmts-generator", "pw", "admin", "llmts_generator")
    assert ensure_user(db, user) == "created"
    assert db.calls[-1] == (
        "createUser",
        "llmts-generator",
        {"pwd": "pw", "roles": [{"role": "readWrite", "db": "llmts_generator"}]},
    )
    rotated = ServiceUser("generator", "llmts-generator", "pw-new", "admin", "llmts_generator")
    assert ensure_user(db, rotated) == "updated"
    command, name, args = db.calls[-1]
    assert (command, name, args["pwd"]) == ("updateUser", "llmts-generator", "pw-new")
