"""The deadlines of one provider call, and the first-token notice.

A **streamed** call is watched token by token, so a long answer that keeps coming is never cut:

- **first token**: the first chunk (an SSE ``data:`` event, an NDJSON line) must arrive within ``first_token_s``
  of the start of the call. This covers connecting, the server's queue, loading the model and reading the
  prompt: on a server that serves one request at a time a queued request only gets its response headers with its
  first token, so queueing counts toward this deadline. Keep-alive comments are not chunks.
- **idle**: after that, at most ``idle_s`` between two chunks.
- **total** (optional): a cap on the whole call, off by default for streamed calls.

A **non-streamed** call has nothing to watch before the whole answer arrives, so it has a total deadline only.

The one that fires raises :class:`~llmts_providers.errors.ProviderTimeout` whose message names it (``first-token
timeout``, ``idle timeout``, ``total timeout``).

:func:`first_token_listener` lets a caller learn the moment the first chunk of a streamed call arrives, before the
call ends, without the :class:`~llmts_providers.base.Provider` protocol knowing (a context variable of the calling
task): the generator's concurrency controller uses it to see queueing one whole generation earlier.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from llmts_providers.errors import ProviderTimeout

if TYPE_CHECKING:
    from llmts_providers.models import ChatRequest

__all__ = ["CallDeadline", "Deadlines", "first_token_listener"]

log = logging.getLogger(__name__)

_LISTENER: ContextVar[Callable[[], None] | None] = ContextVar("llmts_first_token_listener", default=None)


@contextlib.contextmanager
def first_token_listener(callback: Callable[[], None]) -> Iterator[None]:
    """Within the block, ``callback()`` is called when a streamed provider call of this task receives its first
    chunk (once per call). Never called for a non-streamed call."""
    token = _LISTENER.set(callback)
    try:
        yield
    finally:
        _LISTENER.reset(token)


class CallDeadline:
    """``async with CallDeadline(...) as d:`` around one call; ``d.chunk()`` on every chunk of a stream.

    ``None`` disables a deadline. ``first_token_ms`` is set at the first chunk.
    """

    def __init__(
        self,
        provider: str,
        *,
        first_token_s: float | None = None,
        idle_s: float | None = None,
        total_s: float | None = None,
    ) -> None:
        self.provider = provider
        self.first_token_s = first_token_s
        self.idle_s = idle_s
        self.total_s = total_s
        self.chunks = 0
        self.first_token_ms: float | None = None
        self._start = 0.0
        self._reason = ""
        self._timeout: asyncio.Timeout | None = None

    def _deadline(self, now: float) -> float | None:
        """The next deadline, remembering which rule sets it (for the error message)."""
        options: list[tuple[float, str]] = []
        if self.total_s is not None:
            options.append(
                (self._start + self.total_s, f"total timeout: the call took longer than {self.total_s:g} s")
            )
        if self.chunks == 0 and self.first_token_s is not None:
            options.append(
                (
                    self._start + self.first_token_s,
                    f"first-token timeout: no token within {self.first_token_s:g} s",
                )
            )
        elif self.chunks > 0 and self.idle_s is not None:
            options.append(
                (
                    now + self.idle_s,
                    f"idle timeout: no token for {self.idle_s:g} s after {self.chunks} chunks",
                )
            )
        if not options:
            return None
        when, self._reason = min(options)
        return when

    async def __aenter__(self) -> CallDeadline:
        loop = asyncio.get_running_loop()
        self._start = loop.time()
        self._timeout = asyncio.timeout_at(self._deadline(self._start))
        await self._timeout.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._timeout is not None
        try:
            await self._timeout.__aexit__(exc_type, exc, tb)
        except TimeoutError as fired:
            raise ProviderTimeout(self._reason, self.provider) from fired

    def chunk(self) -> None:
        """A chunk arrived: the first one ends the first-token wait (and tells the listener), each one restarts
        the idle wait."""
        assert self._timeout is not None
        now = asyncio.get_running_loop().time()
        if self.chunks == 0:
            self.first_token_ms = (now - self._start) * 1000.0
            listener = _LISTENER.get()
            if listener is not None:
                try:
                    listener()
                except Exception:  # a listener's bug must not fail the call
                    log.exception("first-token listener failed")
        self.chunks += 1
        self._timeout.reschedule(self._deadline(now))


@dataclass(frozen=True)
class Deadlines:
    """An adapter's configured deadlines; :meth:`for_call` applies a request's overrides (``timeout_s``,
    ``first_token_timeout_s``, ``idle_timeout_s``) for a streamed or a non-streamed call."""

    provider: str
    total_s: float  # non-streamed calls
    first_token_s: float
    idle_s: float
    stream_total_s: float | None  # optional cap of a streamed call

    def for_call(self, request: ChatRequest, *, stream: bool) -> CallDeadline:
        if not stream:
            total = request.timeout_s if request.timeout_s is not None else self.total_s
            return CallDeadline(self.provider, total_s=total)
        return CallDeadline(
            self.provider,
            first_token_s=request.first_token_timeout_s or self.first_token_s,
            idle_s=request.idle_timeout_s or self.idle_s,
            total_s=request.timeout_s if request.timeout_s is not None else self.stream_total_s,
        )
