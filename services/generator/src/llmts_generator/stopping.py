"""How a job that is cancelled (or failed) lets go of its slots before the runner abandons what is left.

What waits for a permit, a back-off or a render is abandoned at once (no call was made). A call already at the
provider is awaited up to ``RunnerConfig.cancel_drain_s`` (``CANCEL_DRAIN_SECONDS``), because the provider bills
it: its slot records the attempt (and keeps a valid item, like every finished one), charges its cost, then ends —
repairs, retries and later stages stop with the job, and a permit granted after the stop is given back unused
(``SlotWork.provider_call``). Abandoning those calls, as before, let a user start jobs and cancel them to spend the
operator's money without being charged (issue 14). A cancel for an erased account does not drain (nothing of the
user may be written after the erase).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("llmts.generator.runner")


async def drain_calls(
    tasks: Iterable[asyncio.Task[Any]], at_provider: set[asyncio.Task[Any]], drain_s: float, job_id: str
) -> None:
    """Cancel the ``tasks`` that have no call at the provider; await the others up to ``drain_s``."""
    calling = set(at_provider)
    for t in tasks:
        if t not in calling:
            t.cancel()
    if not calling or drain_s <= 0:
        return
    started = time.monotonic()
    await asyncio.wait(calling, timeout=drain_s)
    left = sum(not t.done() for t in calling)
    log.info(
        "job %s: %d call(s) at the provider awaited for %.2f s after the stop, %d abandoned",
        job_id, len(calling) - left, time.monotonic() - started, left,
    )  # fmt: skip
