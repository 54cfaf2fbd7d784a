"""Rendering off the caller's event loop, with a hard deadline.

>>> pool = RenderPool(workers=2)                      # two worker processes (``isolation="thread"``: threads)
>>> prompts = await pool.render_prompts(system, user, context)   # RenderError like PromptRenderer
>>> pool.close()

The sandbox checks its deadline cooperatively (loops, calls, filters, intercepted operators): that stops almost
every template, but only between two operations, and one operation on a value of ``max_value_size`` items (a
sort, a comparison, a ``tojson``) can take a good part of a second and, when it runs in C, holds the GIL all
that time. So a render never runs on the caller's thread:

* ``isolation="process"`` (default): each worker is a process (``spawn``) with its own ``PromptRenderer``; the
  caller's thread waits on a pipe with a timeout. A call that is not answered within ``max_render_seconds +
  grace_seconds`` is refused (``RenderError`` ``limit_exceeded``/``max_render_seconds``) and its process is
  killed and replaced, whatever the template was doing. The caller's process never holds the GIL for template
  code, so its event loop keeps answering. Costs one pickle round trip per call (~0.1 ms).
* ``isolation="thread"``: the render runs in a worker thread of the caller's process; it stops at the next
  cooperative check and cannot be killed, and a long C operation stalls the caller's event loop for its
  duration (the GIL). Cheaper per call; kept for tests and for measuring the difference
  (``bench/bench_render_guard.py``).

Calls wait for a free worker in a FIFO; ``workers`` bounds the CPU rendering may take. A cancelled caller does
not cancel its render (it ends at its deadline at the latest). No framework, no I/O except the worker pipes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Literal

from llmts_templating.render import (
    PromptRenderer,
    RenderedPrompts,
    RenderError,
    RenderLimits,
    TemplateIssue,
    placeholder_names,
    undeclared_variables,
)

__all__ = ["Inspection", "Isolation", "RenderPool"]

Isolation = Literal["process", "thread"]

# a request: ("render", system, source, contexts) renders the pair (system None: ``source`` alone) for each
# context; ("inspect", None, source, []) compiles ``source`` only. An answer: ("ok", value) or
# ("error", RenderError.to_dict() of the first context that failed).
_Request = tuple[str, str | None, str, list[dict[str, Any]]]


@dataclass(frozen=True)
class Inspection:
    """What compiling a template tells (:meth:`RenderPool.inspect`): its problems (syntax, refused constructs,
    size; empty when it compiles), and then the variables it reads and the ``{placeholders}`` it uses."""

    issues: list[TemplateIssue]
    variables: frozenset[str] = frozenset()
    placeholders: frozenset[str] = frozenset()


def _inspect(renderer: PromptRenderer, source: str) -> dict[str, Any]:
    issues = renderer.check(source)
    if issues:
        return {"issues": [i.model_dump() for i in issues], "variables": [], "placeholders": []}
    try:
        variables = undeclared_variables(source, renderer=renderer)
        placeholders = placeholder_names(source, renderer=renderer)
    except RenderError as err:
        issue = TemplateIssue(message=err.message, line=err.line, kind=err.kind)
        return {"issues": [issue.model_dump()], "variables": [], "placeholders": []}
    return {"issues": [], "variables": sorted(variables), "placeholders": sorted(placeholders)}


def _answer(renderer: PromptRenderer, request: _Request) -> tuple[str, Any]:
    op, system, source, contexts = request
    if op == "inspect":
        return "ok", _inspect(renderer, source)
    out: list[Any] = []
    try:
        for context in contexts:
            if system is None:
                out.append(renderer.render(source, context))
            else:
                prompts = renderer.render_prompts(system, source, context)
                out.append((prompts.system, prompts.user))
    except RenderError as err:
        return "error", err.to_dict()
    return "ok", out


def serve(inbox: Connection, outbox: Connection, limits: RenderLimits) -> None:
    """A worker's main loop (``python -m llmts_templating._worker``): one request at a time until the pipe
    closes. Says ``ready`` once its renderer is built, so its start-up never counts against a deadline."""
    renderer = PromptRenderer(limits)
    outbox.send(("ready", None))
    while True:
        try:
            request = inbox.recv()
        except (EOFError, OSError):
            return
        outbox.send(_answer(renderer, request))


def _error(data: Mapping[str, Any]) -> RenderError:
    return RenderError(
        data.get("kind", "runtime"),
        str(data.get("message", "")),
        variable=data.get("variable"),
        line=data.get("line"),
        limit=data.get("limit"),
    )


_STARTUP_SECONDS = (
    60.0  # a new worker imports jinja2 and pydantic before it is ready (not part of a deadline)
)


class _Worker:
    """One worker process and the parent's ends of its two pipes; used by one caller thread at a time.

    A plain ``python -m llmts_templating._worker`` subprocess rather than ``multiprocessing``: spawn would
    re-import the parent's ``__main__`` (a service entry point, a benchmark script) in every worker."""

    def __init__(self, limits: RenderLimits) -> None:
        self._limits = limits.model_dump_json()
        self._conn: Connection | None = None
        self._send: Connection | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready = False
        self.closed = False
        self.kills = 0
        self._lock = threading.Lock()

    def ensure_started(self) -> None:
        with self._lock:
            if self._conn is None and not self.closed:
                self.start()

    def start(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        try:
            proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module, fixed arguments
                [
                    sys.executable,
                    "-m",
                    "llmts_templating._worker",
                    str(to_child_r),
                    str(from_child_w),
                    self._limits,
                ],
                pass_fds=(to_child_r, from_child_w),
                stdin=subprocess.DEVNULL,
                close_fds=True,
                # its own session: a signal to the service's process group (Ctrl-C, a supervisor's SIGTERM to
                # the group) must not kill workers under renders in flight; a worker whose parent is gone reads
                # EOF on its pipe and exits
                start_new_session=True,
            )
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self._send = Connection(to_child_w, readable=False)
        self._conn = Connection(from_child_r, writable=False)
        self._proc, self._ready = proc, False

    def is_ready(self) -> bool:
        """Started and ready (never blocks); only for an idle worker."""
        conn = self._conn
        if not self._ready and conn is not None and conn.poll(0):
            conn.recv()
            self._ready = True
        return self._ready

    def _wait_ready(self, conn: Connection) -> None:
        """The clock of a call starts once the worker is ready, so its start-up is never a render's time."""
        if not self._ready:
            if not conn.poll(_STARTUP_SECONDS):
                raise OSError("the render worker did not start")
            conn.recv()
            self._ready = True

    def close(self) -> None:
        self.closed = True
        self.stop()

    def stop(self) -> None:
        proc, conns = self._proc, (self._send, self._conn)
        self._proc = self._send = self._conn = None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        for conn in conns:
            if conn is not None:
                conn.close()

    def call(self, request: _Request, timeout: float) -> tuple[str, Any]:
        """The answer to ``request``; a worker that dies under it (killed from outside, out of memory) is
        replaced and asked once more, and only a second death is the template's fault."""
        status, value = self._call(request, timeout)
        if status == "died":
            status, value = self._call(request, timeout)
            if status == "died":
                return "error", {
                    "kind": "limit_exceeded",
                    "limit": "memory",
                    "message": "the render worker died",
                }
        return status, value

    def _call(self, request: _Request, timeout: float) -> tuple[str, Any]:
        self.ensure_started()
        conn, send = self._conn, self._send
        if conn is None or send is None:  # closed
            return "error", {"kind": "runtime", "message": "the render pool is closed"}
        try:
            self._wait_ready(conn)
            send.send(request)
            if conn.poll(timeout):
                answer: tuple[str, Any] = conn.recv()
                return answer
        except (EOFError, OSError):
            self._restart()
            return "died", None
        self.kills += 1
        self._restart()
        return "error", {"kind": "limit_exceeded", "limit": "max_render_seconds", "message": ""}

    def _restart(self) -> None:
        self.stop()
        self.ensure_started()


class RenderPool:
    """Renders prompt templates in worker processes (or threads), never on the caller's event loop."""

    def __init__(
        self,
        limits: RenderLimits = RenderLimits(),
        *,
        workers: int = 2,
        isolation: Isolation = "process",
        grace_seconds: float = 0.25,
    ) -> None:
        if workers < 1:
            raise ValueError("a render pool needs at least one worker")
        self.limits = limits
        self.isolation = isolation
        self.timeout = limits.max_render_seconds + grace_seconds
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llmts-render")
        self._renderer = PromptRenderer(limits)  # thread isolation; also parses and checks in-process
        self._workers: list[_Worker] = []
        self._idle: list[_Worker] = []
        self._free = threading.Condition()
        self._lock = threading.Lock()
        self._closed = False
        if isolation == "process":
            self._workers = [_Worker(limits) for _ in range(workers)]
            self._idle = list(self._workers)

    def start(self) -> None:
        """Start the worker processes now (they start at the first render otherwise). Does not wait for them."""
        for worker in self._workers:
            worker.ensure_started()

    @property
    def kills(self) -> int:
        """Worker processes killed at the hard deadline so far."""
        return sum(w.kills for w in self._workers)

    async def render_prompts(self, system: str, user: str, context: Mapping[str, Any]) -> RenderedPrompts:
        """Both prompts with the same context; raises :class:`RenderError` (the whole call is bounded by
        ``max_render_seconds + grace_seconds`` with process isolation)."""
        return (await self.render_prompts_many(system, user, [context]))[0]

    async def render_prompts_many(
        self, system: str, user: str, contexts: Sequence[Mapping[str, Any]]
    ) -> list[RenderedPrompts]:
        """The prompt pair for each context, in one call under one hard deadline (a preview of n items);
        raises the :class:`RenderError` of the first context that fails."""
        values = await self._submit(("render", system, user, [dict(c) for c in contexts]))
        return [RenderedPrompts(system=s, user=u) for s, u in values]

    async def render(self, source: str, context: Mapping[str, Any]) -> str:
        """One template; raises :class:`RenderError`."""
        values: list[str] = await self._submit(("render", None, source, [dict(context)]))
        return values[0]

    async def inspect(self, source: str, *, path: str | None = None) -> Inspection:
        """Compile ``source`` without rendering it, under the same hard deadline (compiling a 64 KiB template
        made of statements takes seconds): its issues (``path`` set on each), or what it reads."""
        try:
            value = await self._submit(("inspect", None, source, []))
        except RenderError as err:  # killed at the deadline
            return Inspection([TemplateIssue(path=path, message=err.message, line=err.line, kind=err.kind)])
        issues = [TemplateIssue.model_validate({**i, "path": path}) for i in value["issues"]]
        return Inspection(issues, frozenset(value["variables"]), frozenset(value["placeholders"]))

    async def _submit(self, request: _Request) -> Any:
        if self._closed:
            raise RuntimeError("the render pool is closed")
        loop = asyncio.get_running_loop()
        status, value = await loop.run_in_executor(self._executor, self._run, request)
        if status == "error":
            if value.get("limit") == "max_render_seconds" and not value.get("message"):
                value = {
                    **value,
                    "message": f"render took longer than {self.limits.max_render_seconds:g} s",
                }
            raise _error(value)
        return value

    def _run(self, request: _Request) -> tuple[str, Any]:
        if self.isolation == "thread":
            return _answer(self._renderer, request)
        worker = self._take()
        try:
            return worker.call(request, self.timeout)
        finally:
            with self._free:
                self._idle.append(worker)
                self._free.notify()

    def _take(self) -> _Worker:
        """An idle worker, a ready one first: one replaced after a kill is still starting (imports take ~0.5 s,
        more on a busy machine) and the next caller should not wait for it while another one is ready."""
        with self._free:
            while not self._idle:  # as many executor threads as workers: never waits in practice
                self._free.wait()
            for i, worker in enumerate(self._idle):
                if worker.is_ready():
                    return self._idle.pop(i)
            return self._idle.pop(0)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Stop the workers (a render in flight is killed)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        for worker in self._workers:
            with contextlib.suppress(Exception):
                worker.close()
