"""The role carried by an access token, as every service reads it."""

from __future__ import annotations

import pytest

from llmts_common.auth import Principal


def _principal(**claims: object) -> Principal:
    return Principal(user_id="u1", email=None, token_id="t", claims=dict(claims))


@pytest.mark.parametrize(
    ("claims", "role"),
    [({"role": "admin"}, "admin"), ({"role": "user"}, "user"), ({}, "user"), ({"role": "root"}, "user")],
)
def test_role_comes_from_the_claim_and_unknown_values_are_plain_users(
    claims: dict[str, object], role: str
) -> None:
    assert _principal(**claims).role == role
    assert _principal(**claims).is_admin is (role == "admin")
