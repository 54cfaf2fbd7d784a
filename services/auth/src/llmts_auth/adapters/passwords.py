"""Password hashing with pwdlib + argon2id, off the event loop (a hash costs ~100 ms of CPU by design)."""

from __future__ import annotations

import asyncio
import secrets

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher


class Argon2PasswordHasher:
    def __init__(self, *, time_cost: int = 3, memory_cost_kib: int = 65536, parallelism: int = 4) -> None:
        self._hash = PasswordHash(
            (Argon2Hasher(time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=parallelism),)
        )
        # A real hash of a random secret: verifying against it costs what a real verify costs.
        self._dummy = self._hash.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hash.hash, password)

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        try:
            return await asyncio.to_thread(self._hash.verify_and_update, password, password_hash)
        except Exception:  # an unparsable stored hash is a failed login, not a crash
            return False, None

    async def dummy_verify(self, password: str) -> None:
        await asyncio.to_thread(self._hash.verify, password, self._dummy)
