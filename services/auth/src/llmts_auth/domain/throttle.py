"""Throttling of failed logins and of registrations, per client address and per account *from* an address.

Counters live in fixed windows. Keys:

- ``acct_ip`` (account + client address): after ``backoff_free`` failures each further one doubles a wait
  (``backoff_base`` × 2^n, at most ``backoff_cap``), and ``max_failures_per_account_ip`` closes it for the window.
  Only the attacker's address is slowed: the owner logging in from another address has a clean counter.
- ``ip`` (client address): at most ``max_failures_per_ip`` failures per window, whatever the accounts tried.
- ``register_ip``: at most ``max_registrations_per_ip`` registration attempts per window.

There is deliberately no per-account counter across addresses: it would let anyone lock the owner out.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures_per_account_ip: int = 20
    max_failures_per_ip: int = 50
    max_registrations_per_ip: int = 10
    backoff_free: int = 3
    backoff_base: timedelta = timedelta(seconds=1)
    backoff_cap: timedelta = timedelta(minutes=5)
    window: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class ThrottleKey:
    """One counter: ``scope`` is ``acct_ip``, ``ip`` or ``register_ip``; ``key`` is a hash (no address in clear).

    ``limit`` closes the key until the window ends; with ``backoff_free`` set, each failure past that many makes
    the key wait ``backoff_base`` × 2^(n-1) after the latest failure (at most ``backoff_cap``).
    """

    scope: str
    key: str
    limit: int
    backoff_free: int | None = None
    backoff_base: timedelta = timedelta(seconds=1)
    backoff_cap: timedelta = timedelta(minutes=5)

    def blocked_until(self, count: int, last_at: datetime | None, window_end: datetime) -> datetime | None:
        """When this key opens again given its window's failure count and latest failure (None = open)."""
        if count >= self.limit:
            return window_end
        if self.backoff_free is None or count <= self.backoff_free or last_at is None:
            return None
        exponent = min(count - self.backoff_free - 1, 30)
        wait: timedelta = min(self.backoff_cap, self.backoff_base * (2**exponent))
        return min(window_end, last_at + wait)


def login_keys(policy: ThrottlePolicy, *, email: str, client_ip: str | None) -> list[ThrottleKey]:
    """The counters a login attempt checks and, when it fails, bumps."""
    address = client_ip or "unknown"
    return [
        ThrottleKey(
            "acct_ip",
            _digest(f"{email}\x00{address}"),
            policy.max_failures_per_account_ip,
            backoff_free=policy.backoff_free,
            backoff_base=policy.backoff_base,
            backoff_cap=policy.backoff_cap,
        ),
        ThrottleKey("ip", _digest(address), policy.max_failures_per_ip),
    ]


def register_key(policy: ThrottlePolicy, *, client_ip: str | None) -> ThrottleKey:
    return ThrottleKey("register_ip", _digest(client_ip or "unknown"), policy.max_registrations_per_ip)


def window_bounds(now: datetime, window: timedelta) -> tuple[datetime, datetime]:
    size = int(window.total_seconds())
    start = int(now.timestamp()) // size * size
    begin = datetime.fromtimestamp(start, UTC)
    return begin, begin + window


def retry_after_seconds(now: datetime, until: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds()))


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


class InFlightPerAddress:
    """At most ``limit`` password checks in flight per client address in this process: a burst of concurrent
    attempts from one address cannot fill the hashing queue (and slip past the counters, which only see an attempt
    once it has failed); the extra ones are refused at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._count: dict[str, int] = {}

    def try_acquire(self, address: str) -> bool:
        current = self._count.get(address, 0)
        if current >= self.limit:
            return False
        self._count[address] = current + 1
        return True

    def release(self, address: str) -> None:
        current = self._count.get(address, 0) - 1
        if current > 0:
            self._count[address] = current
        else:
            self._count.pop(address, None)
