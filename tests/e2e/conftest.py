"""End-to-end fixtures: one real stack (six services + fake providers as processes) per test session."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.e2e.stack import Stack, new_stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    s = new_stack()
    try:
        s.start()
        yield s
    finally:
        s.stop()


@dataclass
class User:
    email: str
    password: str
    access_token: str
    refresh_token: str
    user_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def register_and_login(client: httpx.AsyncClient, name: str = "user") -> User:
    email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
    password = "correct horse battery staple 42"
    r = await client.post("/auth/register", json={"email": email, "password": password, "name": name})
    assert r.status_code == 201, r.text
    user_id = r.json()["id"]
    r = await client.post("/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    body = r.json()
    return User(email, password, body["access_token"], body["refresh_token"], user_id)


@pytest.fixture
async def gateway(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway, timeout=30.0) as client:
        yield client
