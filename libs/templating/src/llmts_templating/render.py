"""Sandboxed, bounded rendering of Jinja2 prompt templates.

>>> renderer = PromptRenderer()
>>> renderer.render("Write about {{ topic }} (#{index})", {"topic": "history", "index": 3})
'Write about history (#3)'
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal

from jinja2 import Template, meta, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from pydantic import BaseModel, ConfigDict, Field

from llmts_templating._sandbox import (
    PLACEHOLDER,
    LimitExceededError,
    PromptEnvironment,
    RenderLimits,
    RenderState,
    TemplateSecurityError,
    UndefinedVariableError,
    render_state,
)
from llmts_templating.locate import syntax_column

__all__ = [
    "BUILTIN_VARIABLES",
    "PromptRenderer",
    "RenderError",
    "RenderErrorKind",
    "RenderLimits",
    "RenderedPrompts",
    "TemplateIssue",
    "build_context",
    "check_template",
    "placeholder_names",
    "undeclared_variables",
]

RenderErrorKind = Literal["syntax", "undefined_variable", "security", "limit_exceeded", "runtime"]

#: Variables every render gets from :func:`build_context`.
BUILTIN_VARIABLES: frozenset[str] = frozenset(
    {"index", "task_index", "date", "datetime", "timestamp", "job_id"}
)

_MAX_MESSAGE = 400


class RenderError(Exception):
    """A template could not be compiled or rendered. Never carries template objects, only text.

    ``kind``: ``syntax`` | ``undefined_variable`` | ``security`` | ``limit_exceeded`` | ``runtime``.
    ``variable`` is set for ``undefined_variable``; ``limit`` names the RenderLimits field that was hit.
    """

    def __init__(
        self,
        kind: RenderErrorKind,
        message: str,
        *,
        variable: str | None = None,
        line: int | None = None,
        limit: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: RenderErrorKind = kind
        self.message = message
        self.variable = variable
        self.line = line
        self.limit = limit

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.kind}: {self.message}{where}"

    def __repr__(self) -> str:
        return f"RenderError(kind={self.kind!r}, message={self.message!r}, variable={self.variable!r}, line={self.line!r})"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "message": self.message, "line": self.line}
        if self.variable is not None:
            out["variable"] = self.variable
        if self.limit is not None:
            out["limit"] = self.limit
        return out


class TemplateIssue(BaseModel):
    """One problem found by :func:`check_template` (``path`` is the caller's label, e.g. ``prompts.user``)."""

    model_config = ConfigDict(frozen=True)

    path: str | None = None
    message: str
    line: int | None = None
    column: int | None = Field(
        default=None, description="1-based, on ``line`` (syntax errors the parser can place)."
    )
    kind: RenderErrorKind


@dataclass(frozen=True, slots=True)
class RenderedPrompts:
    system: str
    user: str


def build_context(
    *,
    index: int,
    task_index: int = 0,
    job_id: str = "",
    now: datetime,
    template_variables: Mapping[str, Any] | None = None,
    task: Mapping[str, Any] | None = None,
    request_variables: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The variables of one render: built-ins, then template variables, task fields, request variables
    (later wins, so a task field may override a template default). ``now`` naive = UTC.

    Built-ins: ``index`` (0-based in the job), ``task_index`` (0-based in its task), ``date``
    (``YYYY-MM-DD``, UTC), ``datetime`` (ISO 8601, UTC), ``timestamp`` (unix seconds), ``job_id``.
    """
    utc = now.astimezone(UTC) if now.tzinfo is not None else now.replace(tzinfo=UTC)
    context: dict[str, Any] = {
        "index": index,
        "task_index": task_index,
        "date": utc.date().isoformat(),
        "datetime": utc.isoformat(),
        "timestamp": int(utc.timestamp()),
        "job_id": job_id,
    }
    for layer in (template_variables, task, request_variables):
        if layer:
            context.update(layer)
    return context


def _template_line(tb: TracebackType | None) -> int | None:
    line = None
    while tb is not None:
        template = tb.tb_frame.f_globals.get("__jinja_template__")
        if isinstance(template, Template):
            with contextlib.suppress(Exception):
                line = template.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next
    return line


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def _to_render_error(exc: BaseException) -> RenderError:
    if isinstance(exc, RenderError):
        return exc
    line = _template_line(exc.__traceback__)
    if isinstance(exc, LimitExceededError):
        return RenderError("limit_exceeded", _clip(exc.message), line=line, limit=exc.limit)
    if isinstance(exc, TemplateSyntaxError):
        return RenderError("syntax", _clip(exc.message or str(exc)), line=exc.lineno)
    if isinstance(exc, TemplateSecurityError):
        return RenderError("security", _clip(str(exc)), line=exc.lineno or line)
    if isinstance(exc, SecurityError):
        return RenderError("security", _clip(str(exc)), line=line)
    if isinstance(exc, UndefinedVariableError):
        return RenderError("undefined_variable", _clip(str(exc)), variable=exc.name, line=line)
    if isinstance(exc, UndefinedError):
        return RenderError("undefined_variable", _clip(str(exc)), line=line)
    if isinstance(exc, RecursionError):
        return RenderError("limit_exceeded", "recursion is too deep", line=line, limit="recursion")
    if isinstance(exc, MemoryError):
        return RenderError("limit_exceeded", "out of memory while rendering", line=line, limit="memory")
    return RenderError("runtime", _clip(f"{type(exc).__name__}: {exc}"), line=line)


class PromptRenderer:
    """Renders prompt templates in the sandbox. Thread-safe; keep one per process (per limits)."""

    def __init__(self, limits: RenderLimits = RenderLimits()) -> None:
        self.limits = limits
        self.environment = PromptEnvironment(limits)
        self._compile_cached = functools.lru_cache(maxsize=limits.cache_size)(self._compile_uncached)

    # -- compile --------------------------------------------------------------------------------
    def _compile_uncached(self, source: str) -> Template:
        size = len(source.encode("utf-8", "surrogatepass"))
        if size > self.limits.max_template_bytes:
            raise RenderError(
                "limit_exceeded",
                f"template is {size} bytes, the limit is {self.limits.max_template_bytes}",
                limit="max_template_bytes",
            )
        try:
            return self.environment.from_string(source)
        except Exception as exc:
            raise _to_render_error(exc) from None

    def compile(self, source: str) -> Template:
        """Compile (or fetch from the LRU cache) a template; raises :class:`RenderError`."""
        if not isinstance(source, str):
            raise RenderError("runtime", f"template source must be a string, got {type(source).__name__}")
        if len(source) > self.limits.max_template_bytes:
            # cheap pre-check so an oversized source never reaches the cache key computation
            raise RenderError(
                "limit_exceeded",
                f"template is over {self.limits.max_template_bytes} bytes",
                limit="max_template_bytes",
            )
        return self._compile_cached(source)

    def cache_info(self) -> Any:
        return self._compile_cached.cache_info()

    def clear_cache(self) -> None:
        self._compile_cached.cache_clear()

    # -- render ---------------------------------------------------------------------------------
    def render(self, source: str, context: Mapping[str, Any]) -> str:
        """Render ``source`` with ``context``; raises :class:`RenderError` and nothing else."""
        template = self.compile(source)
        limits = self.limits
        state = RenderState(deadline=time.monotonic() + limits.max_render_seconds, limits=limits)
        token = render_state.set(state)
        try:
            ctx = template.new_context(context if isinstance(context, dict) else dict(context))
            parts: list[str] = []
            size = 0
            max_out = limits.max_output_chars
            stream = template.root_render_func(ctx)
            try:
                for chunk in stream:
                    size += len(chunk)
                    if size > max_out:
                        raise LimitExceededError(
                            "max_output_chars", f"rendered text is longer than {max_out} characters"
                        )
                    parts.append(chunk)
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
            state.check_time()
            return "".join(parts)
        except Exception as exc:
            raise _to_render_error(exc) from None
        finally:
            render_state.reset(token)

    def render_prompts(self, system: str, user: str, context: Mapping[str, Any]) -> RenderedPrompts:
        """Render the system and the user prompt with the same context."""
        return RenderedPrompts(system=self.render(system, context), user=self.render(user, context))

    # -- inspection -----------------------------------------------------------------------------
    def check(self, source: str, *, path: str | None = None) -> list[TemplateIssue]:
        """Compile without rendering: syntax errors (with lines), refused constructs, size."""
        try:
            self.compile(source)
        except RenderError as err:
            column = syntax_column(self.environment, source, err.line) if err.kind == "syntax" else None
            return [
                TemplateIssue(path=path, message=err.message, line=err.line, column=column, kind=err.kind)
            ]
        return []

    def parse(self, source: str) -> nodes.Template:
        """The (instrumented) AST of ``source``; raises :class:`RenderError`."""
        try:
            return self.environment.parse(source)
        except Exception as exc:
            raise _to_render_error(exc) from None


_default: PromptRenderer | None = None
_default_lock = threading.Lock()


def _default_renderer() -> PromptRenderer:
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = PromptRenderer()
    return _default


def check_template(source: str, *, path: str | None = None, renderer: PromptRenderer | None = None) -> list[TemplateIssue]:  # fmt: skip
    """Problems a template has before any rendering: syntax errors with line numbers, constructs the
    sandbox refuses (``kind="security"``) and an oversized source (``kind="limit_exceeded"``)."""
    return (renderer or _default_renderer()).check(source, path=path)


def undeclared_variables(source: str, *, renderer: PromptRenderer | None = None) -> set[str]:
    """Variables the template reads but does not define itself (jinja2.meta), e.g. to warn about
    variables a template needs that neither the built-ins nor the template's defaults provide.
    llm-data-gen ``{placeholders}`` are not included (they fall back to literal text); see
    :func:`placeholder_names`. Raises :class:`RenderError` for a template that does not compile."""
    tree = (renderer or _default_renderer()).parse(source)
    return set(meta.find_undeclared_variables(tree))


def placeholder_names(source: str, *, renderer: PromptRenderer | None = None) -> set[str]:
    """Names used as llm-data-gen single-brace placeholders (``{topic}``) in the template text."""
    tree = (renderer or _default_renderer()).parse(source)
    names: set[str] = set()
    for node in tree.find_all(nodes.Filter):
        if node.name == PLACEHOLDER and isinstance(node.node, nodes.Const):
            names.add(str(node.node.value))
    return names
