"""Failed-login throttling: fixed windows per email and per client IP."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures_per_email: int = 5
    max_failures_per_ip: int = 50
    window: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class ThrottleKey:
    """One counter: ``scope`` is ``email`` or ``ip``; ``key`` is a hash so no address is stored in clear."""

    scope: str
    key: str
    limit: int


def throttle_keys(policy: ThrottlePolicy, *, email: str, client_ip: str | None) -> list[ThrottleKey]:
    keys = [ThrottleKey("email", _digest(email), policy.max_failures_per_email)]
    if client_ip:
        keys.append(ThrottleKey("ip", _digest(client_ip), policy.max_failures_per_ip))
    return keys


def window_bounds(now: datetime, window: timedelta) -> tuple[datetime, datetime]:
    size = int(window.total_seconds())
    start = int(now.timestamp()) // size * size
    begin = datetime.fromtimestamp(start, UTC)
    return begin, begin + window


def retry_after_seconds(now: datetime, window_end: datetime) -> int:
    return max(1, math.ceil((window_end - now).total_seconds()))


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]
