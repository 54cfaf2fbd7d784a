"""The repository contract bound to the in-memory fakes (always runs)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from services.auth.tests.contract import (
    OAuthStatesContract,
    RefreshTokensContract,
    SigningKeysContract,
    ThrottleContract,
    UsersContract,
)
from services.auth.tests.fakes import (
    InMemoryOAuthStates,
    InMemoryRefreshTokens,
    InMemorySigningKeys,
    InMemoryThrottle,
    InMemoryUsers,
)

from llmts_auth.domain.throttle import ThrottlePolicy

pytestmark = pytest.mark.unit


class TestInMemoryUsers(UsersContract):
    @pytest.fixture
    def users(self) -> InMemoryUsers:
        return InMemoryUsers()


class TestInMemoryRefreshTokens(RefreshTokensContract):
    @pytest.fixture
    def refresh_tokens(self) -> InMemoryRefreshTokens:
        return InMemoryRefreshTokens()


class TestInMemoryOAuthStates(OAuthStatesContract):
    @pytest.fixture
    def states(self) -> InMemoryOAuthStates:
        return InMemoryOAuthStates()


class TestInMemoryThrottle(ThrottleContract):
    @pytest.fixture
    def throttle(self) -> InMemoryThrottle:
        return InMemoryThrottle(ThrottlePolicy(window=timedelta(minutes=15)))


class TestInMemorySigningKeys(SigningKeysContract):
    @pytest.fixture
    def keys(self) -> InMemorySigningKeys:
        return InMemorySigningKeys()
