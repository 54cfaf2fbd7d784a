"""Root pytest configuration: marks each test with its tier from where it lives.

- ``*/tests/unit/*``        → ``unit``       (no I/O)
- ``*/tests/integration/*`` → ``connected``  (real local Kafka + MongoDB-wire server, started by ``make test``)
- ``tests/e2e/*``           → ``e2e`` and ``connected`` is NOT added (e2e starts the whole stack itself)
"""

from __future__ import annotations

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
