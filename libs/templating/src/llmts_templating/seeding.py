"""Which row of a seed dataset item ``i`` of a job gets (issue 18 #1), from the job's seed — no state kept. The
generator picks the rows of a job with it, and the templates service's preview with its ``sample_seed``, so a
preview shows the rows a job with ``seed`` = ``sample_seed`` gives the same items.

- ``ordered``: row ``i mod rows`` — the file's order, cycling;
- ``shuffle``: a permutation of the rows drawn from the job seed, a new one for each pass over the dataset (so
  ``rows`` consecutive items see every row exactly once, in an order that looks random);
- ``with_replacement``: an independent uniform draw per item (rows may repeat before every row was used).

The permutation is a keyed bijection computed per index — a 4-round Feistel network over the smallest even power of
two ≥ ``rows``, cycle-walked back into ``[0, rows)`` — so a million-row dataset needs no million-entry table, and
item ``i`` gets the same row on every run, resume and extension of the job.
"""

from __future__ import annotations

import hashlib
from typing import Literal

__all__ = ["Sampling", "row_for"]

Sampling = Literal["ordered", "shuffle", "with_replacement"]
_ROUNDS = 4


def _hash(*parts: object) -> int:
    return int.from_bytes(
        hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest(), "big"
    )


def _permute(index: int, n: int, key: str) -> int:
    """A bijection of ``[0, n)`` keyed by ``key``."""
    if n <= 1:
        return 0
    half = max(1, ((n - 1).bit_length() + 1) // 2)
    mask = (1 << half) - 1
    x = index
    while True:
        left, right = x >> half, x & mask
        for r in range(_ROUNDS):
            left, right = right, left ^ (_hash(key, r, right) & mask)
        x = (left << half) | right
        if x < n:  # cycle-walking: the domain is at most 4n, so a few steps at most on average
            return x


def row_for(sampling: Sampling, rows: int, seed: int, index: int) -> int:
    """The row item ``index`` of a job with ``seed`` gets from a dataset of ``rows`` rows."""
    if rows <= 0:
        raise ValueError("the dataset has no rows")
    if sampling == "ordered":
        return index % rows
    if sampling == "with_replacement":
        return _hash(seed, "draw", index) % rows
    epoch, position = divmod(index, rows)
    return _permute(position, rows, f"{seed}:{epoch}")
