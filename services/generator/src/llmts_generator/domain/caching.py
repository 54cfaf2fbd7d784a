"""Seeds and response-cache keys (pure).

- **Job seed**: the request's ``seed``, or one derived from the job id (random per job, recorded on the job).
- **Item seed** = f(job seed, target, item attempt): the same target's n-th item attempt gets the same seed in
  every run of the same job seed, so its provider request (and its cache key) is the same; a repair or a fresh
  retry of the same target is another item attempt, hence another seed (asking again must not give the answer
  that was just refused).
- **Cache key** = sha256 of the canonical JSON of the exact provider request body (``Provider.build_request_body``:
  messages, model, sampling parameters, ``response_format`` / ``format``, the seed) plus the provider's name and
  the item seed. How the answer is transported (``stream``, ``stream_options``) is left out. Keys are per user:
  the store prefixes them with the user id, so an answer never leaks across users.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

MAX_SEED: Final = 2**31 - 1  # what every provider accepts as an integer seed
_TRANSPORT_KEYS: Final = frozenset({"stream", "stream_options"})


def job_seed(seed: int | None, job_id: str) -> int:
    """The request's seed, else a seed drawn from the job id (job ids are random)."""
    if seed is not None:
        return seed
    return _hash_int(f"job:{job_id}")


def effective_cache_mode(mode: str, *, seed_given: bool, round_no: int) -> str:
    """The mode a job's slots use. ``use`` reads only where a read can hit: a job whose seed was drawn from its
    random id (none given) asks in its first round for keys nobody can have written, so it does not read at all
    (``write``: no prefetch, no lookups — a Mongo round trip saved per item — its answers still stored, so a re-run
    with the recorded seed hits)."""
    if mode == "use" and not seed_given and round_no <= 1:
        return "write"
    return mode


def item_seed(seed: int, target: int, item_attempt: int) -> int:
    """The seed of item attempt ``item_attempt`` (1-based) of target ``target`` under job seed ``seed``."""
    return _hash_int(f"item:{seed}:{target}:{item_attempt}")


def canonical_body(body: Mapping[str, Any]) -> str:
    """The request body as canonical JSON (sorted keys, no whitespace), transport options left out."""
    kept = {k: v for k, v in body.items() if k not in _TRANSPORT_KEYS}
    return json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def cache_key(provider: str, body: Mapping[str, Any], seed: int) -> str:
    """The cache key of one provider request (hex sha256)."""
    text = f"{provider}\n{seed}\n{canonical_body(body)}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _hash_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") % (MAX_SEED + 1)


@dataclass(frozen=True)
class CachedAnswer:
    """A provider's raw answer as stored in the cache, with what it cost when it was called."""

    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    model: str
    provider: str

    def doc(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
            "model": self.model,
            "provider": self.provider,
        }

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> CachedAnswer:
        return cls(
            text=str(doc.get("text", "")),
            finish_reason=doc.get("finish_reason"),
            prompt_tokens=int(doc.get("prompt_tokens", 0)),
            completion_tokens=int(doc.get("completion_tokens", 0)),
            cost_usd=float(doc.get("cost_usd", 0.0)),
            model=str(doc.get("model", "")),
            provider=str(doc.get("provider", "")),
        )
