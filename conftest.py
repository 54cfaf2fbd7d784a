"""Root pytest configuration: marks each test with its tier from where it lives.

- ``*/tests/unit/*``        → ``unit``       (no I/O)
- ``*/tests/integration/*`` → ``connected``  (real local Kafka + MongoDB-wire server, started by ``make test``)
- ``tests/e2e/*``           → ``e2e`` and ``connected`` is NOT added (e2e starts the whole stack itself)
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:  # noqa: ARG001
    for item in items:
        path = str(item.path).replace("\\", "/")
        if "/tests/e2e/" in path:
            item.add_marker(pytest.mark.e2e)
        elif "/tests/integration/" in path:
            item.add_marker(pytest.mark.connected)
        elif "/tests/unit/" in path:
            item.add_marker(pytest.mark.unit)


# --- test databases --------------------------------------------------------------------------------------------
# Every suite creates databases of its own on the shared local Mongo-wire server (unique names). That server keeps
# all of them in one H2 file, and a file grown by hundreds of finished suites' databases makes every later tier
# slower, so a session drops, when it ends, the databases that appeared while it ran (not a benchmark's: a bench
# drops its own, and one ending test session wiped a running bench's jobs). Two sessions running at the
# same time against one server (a developer's, not CI's) would drop each other's (an auth service's signing keys
# vanished under a running e2e stack), so each session registers itself in var/test-sessions/<pid> and only the
# one that ends while no other is alive drops anything. LLMTS_KEEP_TEST_DATABASES=1 keeps them all.
_DATABASES_AT_START: set[str] | None = None
_SESSIONS = Path(__file__).resolve().parent / "var" / "test-sessions"


def _register_session() -> None:
    with contextlib.suppress(OSError):
        _SESSIONS.mkdir(parents=True, exist_ok=True)
        (_SESSIONS / str(os.getpid())).touch()


def _others_alive() -> bool:
    """Whether another test session (another live process) is running against the server; forgets dead ones."""
    (_SESSIONS / str(os.getpid())).unlink(missing_ok=True)
    alive = False
    for entry in _SESSIONS.glob("*") if _SESSIONS.is_dir() else []:
        try:
            os.kill(int(entry.name), 0)
        except ProcessLookupError:
            entry.unlink(missing_ok=True)
        except (ValueError, PermissionError):
            continue
        else:
            alive = True
    return alive


def _mongo_client() -> object | None:
    if os.environ.get("LLMTS_KEEP_TEST_DATABASES") == "1":
        return None
    try:
        import pymongo

        client = pymongo.MongoClient(
            os.environ.get("MONGO_URL", "mongodb://127.0.0.1:27017"), serverSelectionTimeoutMS=1500
        )
        client.admin.command("ping")
    except Exception:  # no server (the unit tier): nothing to clean
        return None
    return client


def pytest_sessionstart(session: pytest.Session) -> None:  # noqa: ARG001
    global _DATABASES_AT_START
    client = _mongo_client()
    if client is not None:
        _DATABASES_AT_START = set(client.list_database_names())  # type: ignore[attr-defined]
        client.close()  # type: ignore[attr-defined]
        _register_session()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:  # noqa: ARG001
    if _DATABASES_AT_START is None or _others_alive():
        return
    client = _mongo_client()
    if client is None:
        return
    try:
        with contextlib.suppress(Exception):  # cleanup only: the session's result stands
            for name in client.list_database_names():  # type: ignore[attr-defined]
                # a benchmark's stack (llmts_bench_*) drops its own databases when it ends, and runs while tests do
                if (
                    name.startswith("llmts")
                    and not name.startswith("llmts_bench_")
                    and name not in _DATABASES_AT_START
                ):
                    client.drop_database(name)  # type: ignore[attr-defined]
    finally:
        client.close()  # type: ignore[attr-defined]
