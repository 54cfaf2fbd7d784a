"""The ``INTERNAL_TOKEN`` the in-process service fixtures are configured with (e2e runs generate their own)."""

from __future__ import annotations

INTERNAL_TOKEN = "test-internal-token-4f1c9e2a7b3d8e60"


def internal_headers(token: str = INTERNAL_TOKEN) -> dict[str, str]:
    return {"X-Internal-Token": token}
