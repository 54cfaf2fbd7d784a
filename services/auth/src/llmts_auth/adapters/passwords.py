"""Password hashing with pwdlib + argon2id, off the event loop, behind a gate sized to memory.

An argon2 hash holds ``memory_cost`` KiB for its duration (64 MiB by default), so N concurrent hashes need
N × that. ``HashGate`` lets at most ``concurrency`` run at once (``PASSWORD_HASH_MEMORY_BUDGET_MIB`` divided by
the memory cost) and at most ``max_waiting`` wait; the next one is refused at once (``ServerBusy`` → 429 +
Retry-After) instead of queueing without bound behind an attacker's burst.
"""

from __future__ import annotations

import asyncio
import math
import secrets
from collections.abc import Callable
from typing import TypeVar

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from llmts_auth.domain.errors import ServerBusy

T = TypeVar("T")


def hash_concurrency(memory_budget_mib: int, memory_cost_kib: int) -> int:
    """How many argon2 hashes fit in the budget at once (at least one)."""
    return max(1, (memory_budget_mib * 1024) // memory_cost_kib)


class HashGate:
    """At most ``concurrency`` calls run (in threads), at most ``max_waiting`` wait; others raise ``ServerBusy``."""

    def __init__(self, concurrency: int, max_waiting: int, *, seconds_per_hash: float = 0.2) -> None:
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        self._slots = asyncio.Semaphore(concurrency)
        self._admitted = 0  # running + waiting
        self.refused = 0
        self.max_running = 0
        self._running = 0
        self._seconds_per_hash = seconds_per_hash

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        if self._admitted >= self.concurrency + self.max_waiting:
            self.refused += 1
            queued_rounds = self._admitted / self.concurrency
            raise ServerBusy(retry_after=max(1, math.ceil(queued_rounds * self._seconds_per_hash)))
        self._admitted += 1
        try:
            async with self._slots:
                self._running += 1
                self.max_running = max(self.max_running, self._running)
                try:
                    return await asyncio.to_thread(fn, *args)
                finally:
                    self._running -= 1
        finally:
            self._admitted -= 1


class Argon2PasswordHasher:
    def __init__(
        self,
        *,
        time_cost: int = 3,
        memory_cost_kib: int = 65536,
        parallelism: int = 4,
        gate: HashGate | None = None,
    ) -> None:
        self._hash = PasswordHash(
            (Argon2Hasher(time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=parallelism),)
        )
        self.gate = gate or HashGate(concurrency=4, max_waiting=16)
        # A real hash of a random secret: verifying against it costs what a real verify costs.
        self._dummy = self._hash.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await self.gate.run(self._hash.hash, password)

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        try:
            return await self.gate.run(self._hash.verify_and_update, password, password_hash)
        except ServerBusy:
            raise
        except Exception:  # an unparsable stored hash is a failed login, not a crash
            return False, None

    async def dummy_verify(self, password: str) -> None:
        await self.gate.run(self._hash.verify, password, self._dummy)
