"""The admin-only dependency of the gateway."""

from __future__ import annotations

import asyncio

import pytest

from llmts_common.auth import Principal
from llmts_common.errors import Forbidden
from llmts_gateway.deps import admin_user


def _principal(**claims: object) -> Principal:
    return Principal(user_id="u1", email=None, token_id="t", claims=dict(claims))


def test_admin_dependency_refuses_a_plain_user_with_403() -> None:
    with pytest.raises(Forbidden) as caught:
        asyncio.run(admin_user(_principal(role="user")))
    assert caught.value.status_code == 403
    admin = _principal(role="admin")
    assert asyncio.run(admin_user(admin)) is admin
