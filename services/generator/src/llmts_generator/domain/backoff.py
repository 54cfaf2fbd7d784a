"""Exponential backoff with full jitter that honours the provider's Retry-After."""

from __future__ import annotations

import random
from dataclasses import dataclass

_RNG = random.Random()


@dataclass(frozen=True)
class BackoffPolicy:
    base_s: float = 0.5
    cap_s: float = 30.0
    max_retries: int = 6
    #: never wait longer than this even if the provider asks for it (the job would look stuck)
    max_retry_after_s: float = 120.0

    def delay(
        self, retry: int, *, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before retry number ``retry`` (1-based).

        Jittered exponential ``uniform(0.5, 1) * min(cap, base * 2**(retry-1))``; when the provider said
        ``Retry-After``, wait at least that long (plus a little jitter so waiting slots do not stampede).
        """
        r = rng or _RNG
        exp: float = min(self.cap_s, self.base_s * float(2 ** max(0, retry - 1)))
        delay: float = exp * (0.5 + r.random() / 2)
        if retry_after is not None and retry_after > 0:
            honoured = min(retry_after, self.max_retry_after_s)
            delay = max(delay, honoured + honoured * 0.1 * r.random())
        return delay

    def should_retry(self, retry: int) -> bool:
        """``retry`` is the number of the retry about to happen (1 = first retry)."""
        return retry <= self.max_retries
