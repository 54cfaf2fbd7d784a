"""The sandboxed Jinja environment behind :mod:`llmts_templating.render`.

Layers, cheapest first:

* compile time: a static scan of the AST refuses dunder/name-mangled attribute access, ``self``,
  template inclusion and suspicious filter arguments (``kind="security"`` with a line number); the AST
  is then instrumented: every ``for`` iterable is wrapped in an iteration guard (loop budget and
  deadline), list/tuple/dict literals, ``~`` and ``{% set %}`` blocks in a size guard, and every output
  inside a loop, macro or call block in an emission guard (text produced in buffers that never reach
  the top-level stream still counts).
* run time: ``call``/``getattr``/binary operators are overridden (deadline, dunder refusal, size
  pre-checks for ``*``, ``**``, ``%``, ``+``, ``str.format``, ``str.replace``/``join``/``center``…,
  the ``replace``/``join``/``center``/``indent``/``format``/``batch``/``slice`` filters), ``range`` is
  capped, ``namespace`` checks what is stored in it, unsafe attributes raise instead of returning an
  undefined, and an undefined variable raises an error naming it.
* the caller (``PromptRenderer``) streams the top-level output and enforces the output size.

All per-render counters live in a ``ContextVar`` so one environment can serve many threads/tasks.
"""

from __future__ import annotations

import functools
import itertools
import re
import string
import time
import types
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, NoReturn

from jinja2 import nodes, pass_context
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.lexer import TOKEN_DATA, TOKEN_RAW_BEGIN, TOKEN_RAW_END, Lexer
from jinja2.runtime import Context, LoopContext, StrictUndefined, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Cycler, Joiner, Namespace, _PassArg, missing
from pydantic import BaseModel, ConfigDict, Field

from llmts_templating import filters as _filters

__all__ = [
    "LimitExceededError",
    "PromptEnvironment",
    "RenderLimits",
    "RenderState",
    "TemplateSecurityError",
    "UndefinedVariableError",
    "render_state",
]


class RenderLimits(BaseModel):
    """Bounds of one render. Sizes of text are counted in characters unless the name says bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_template_bytes: int = Field(64 * 1024, gt=0, description="UTF-8 size of one template source")
    max_output_chars: int = Field(256 * 1024, gt=0, description="characters of one rendered prompt")
    max_render_seconds: float = Field(1.0, gt=0, description="wall time of one render (cooperative)")
    max_range: int = Field(10_000, gt=0, description="items one range() call may produce")
    max_loop_iterations: int = Field(100_000, gt=0, description="for-loop iterations per render, all loops")
    max_value_size: int = Field(
        1024 * 1024, gt=0, description="characters/items of any single value the template builds"
    )
    max_buffered_chars: int = Field(
        1024 * 1024, gt=0, description="text emitted inside loops, macros and call blocks per render"
    )
    cache_size: int = Field(512, ge=0, description="compiled templates kept (LRU, keyed by source)")


# --------------------------------------------------------------------------------------------------
# exceptions raised inside the sandbox (mapped to RenderError by the renderer)


class LimitExceededError(Exception):
    """A resource bound was hit. ``limit`` names the RenderLimits field (or a short reason)."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit
        self.message = message


class TemplateSecurityError(SecurityError):
    """Refused construct found while compiling (carries the template line)."""

    def __init__(self, message: str, lineno: int | None = None) -> None:
        super().__init__(message)
        self.lineno = lineno


class UndefinedVariableError(UndefinedError):
    def __init__(self, message: str, name: str | None) -> None:
        super().__init__(message)
        self.name = name


class _StrictUndefined(StrictUndefined):
    """StrictUndefined whose error carries the missing name."""

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> NoReturn:
        if self._undefined_exception is UndefinedError:
            name = self._undefined_name
            raise UndefinedVariableError(self._undefined_message, None if name is None else str(name))
        raise self._undefined_exception(self._undefined_message)


# Undefined/StrictUndefined bind their dunders to the base function object; rebind them to ours.
for _klass in (Undefined, StrictUndefined):
    for _name, _value in list(vars(_klass).items()):
        if _value is Undefined._fail_with_undefined_error and _name != "_fail_with_undefined_error":
            setattr(_StrictUndefined, _name, _StrictUndefined._fail_with_undefined_error)


# --------------------------------------------------------------------------------------------------
# per-render state


@dataclass(slots=True)
class RenderState:
    deadline: float
    limits: RenderLimits
    iterations: int = 0
    emitted: int = 0

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise LimitExceededError(
                "max_render_seconds",
                f"render took longer than {self.limits.max_render_seconds:g} s",
            )


render_state: ContextVar[RenderState | None] = ContextVar("llmts_render_state", default=None)


def _check_deadline() -> None:
    state = render_state.get()
    if state is not None:
        state.check_time()


_MAX_INT_BITS = 100_000


def value_weight(value: Any, budget: int) -> int:
    """Characters/items a value would take when materialised; stops counting once over ``budget``."""
    kind = type(value)
    if kind is str:
        return len(value)
    if kind is int:
        bits: int = value.bit_length()
        return bits // 3 + 1
    if kind is float or kind is bool or value is None:
        return 1
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            total += len(item)
            children: Iterable[Any] = itertools.chain(item.keys(), item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += len(item)
            children = item
        elif isinstance(item, str | bytes | bytearray):
            total += len(item)
            continue
        elif isinstance(item, int) and not isinstance(item, bool):
            total += item.bit_length() // 3 + 1
            continue
        else:
            total += 1
            continue
        if total > budget:
            return total
        # scalars inside a container are already counted by len(); descend into the rest
        for child in children:
            kind = type(child)
            if kind is str:
                total += len(child)
            elif kind is not int and kind is not float and kind is not bool and child is not None:
                stack.append(child)
        if total > budget:
            return total
    return total


def _limits_from(context: Context | None) -> RenderLimits:
    state = render_state.get()
    if state is not None:
        return state.limits
    env = getattr(context, "environment", None)
    limits = getattr(env, "limits", None)
    return limits if isinstance(limits, RenderLimits) else RenderLimits()


def _check_size(value: Any, limits: RenderLimits, what: str) -> None:
    cap = limits.max_value_size
    if value_weight(value, cap) > cap:
        raise LimitExceededError("max_value_size", f"{what} would exceed {cap} characters/items")


def _check_int(value: Any, cap: int, what: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > cap:
        raise LimitExceededError("max_value_size", f"{what} {value} is larger than {cap}")


# --------------------------------------------------------------------------------------------------
# guards inserted by the AST instrumentation (pass_context: never constant-folded at compile time)

ITER_GUARD = "__llmts_iter__"
SIZE_GUARD = "__llmts_size__"
OUT_GUARD = "__llmts_out__"
EMIT_GUARD = "__llmts_emit__"
PLACEHOLDER = "__llmts_ph__"
TIME_GUARD = "__llmts_time__"


def _counted(iterator: Iterator[Any], state: RenderState) -> Iterator[Any]:
    cap = state.limits.max_loop_iterations
    for item in iterator:
        state.iterations += 1
        if state.iterations > cap:
            raise LimitExceededError("max_loop_iterations", f"more than {cap} loop iterations")
        if not state.iterations & 0xFF:
            state.check_time()
        yield item


@pass_context
def _guard_iter(_context: Context, iterable: Any) -> Any:
    state = render_state.get()
    if state is None:
        return iterable
    state.check_time()
    return _counted(iter(iterable), state)


@pass_context
def _guard_time(_context: Context, value: Any) -> Any:
    _check_deadline()
    return value


@pass_context
def _guard_size(context: Context, value: Any) -> Any:
    _check_size(value, _limits_from(context), "a value")
    return value


def _count_emitted(state: RenderState | None, amount: int) -> None:
    if state is None or amount <= 0:
        return
    state.emitted += amount
    cap = state.limits.max_buffered_chars
    if state.emitted > cap:
        raise LimitExceededError(
            "max_buffered_chars", f"loops and macros produced more than {cap} characters"
        )


@pass_context
def _guard_out(context: Context, value: Any, static: int = 0) -> str:
    if type(value) is str:
        text: str = value
    else:
        _check_size(value, _limits_from(context), "an output value")
        text = str(value)
    _count_emitted(render_state.get(), len(text) + static)
    return text


@pass_context
def _guard_emit(_context: Context, amount: int) -> str:
    _count_emitted(render_state.get(), amount)
    return ""


_SUFFIX = re.compile(
    r"^(?P<base>.+?)_(?:(?P<op>minus|plus)(?:_(?P<n>\d{1,6}))?|(?P<translit>translit)|(?P<num>num))$"
)
_DIFFICULTY_NUM = {"easy": 1, "medium": 2}


def _js_text(value: Any) -> str:
    """Text of a value the way llm-data-gen's `String(value)` would print it (lists comma-joined)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple):
        return ",".join("" if v is None else _js_text(v) for v in value)
    if isinstance(value, dict):
        return _filters.tojson(value)
    return str(value)


def _lookup(context: Context, name: str) -> Any:
    value = context.resolve_or_missing(name)
    if value is missing or callable(value) or isinstance(value, Undefined):
        return missing
    return value


@pass_context
def _placeholder(context: Context, name: str) -> str:
    """llm-data-gen single-brace placeholder: the context value, or the literal ``{name}`` if unknown.

    Also ``{x_minus_N}``, ``{x_plus_N}``, ``{x_translit}`` and ``{difficulty_num}`` like llm-data-gen.
    """
    value = _lookup(context, name)
    if value is not missing:
        return _js_text(value)
    match = _SUFFIX.match(name)
    if match is not None:
        base = _lookup(context, match["base"])
        if base is not missing:
            if match["translit"]:
                return _filters.translit(base) if isinstance(base, str) else ""
            if match["num"] and match["base"] == "difficulty":
                return str(_DIFFICULTY_NUM.get(str(base), 3))
            if match["op"] and isinstance(base, int | float) and not isinstance(base, bool):
                step = int(match["n"] or 1)
                return _js_text(base - step if match["op"] == "minus" else base + step)
    return "{" + name + "}"


# --------------------------------------------------------------------------------------------------
# lexer: turn `{identifier}` in template text (outside raw blocks) into `{{ "identifier"|__llmts_ph__ }}`

_PLACEHOLDER_RE = re.compile(r"\{([^\W\d]\w*)\}")


def _inject_placeholders(stream: Iterable[tuple[int, str, str]]) -> Iterator[tuple[int, str, str]]:
    in_raw = False
    for lineno, token, value in stream:
        if token == TOKEN_RAW_BEGIN:
            in_raw = True
        elif token == TOKEN_RAW_END:
            in_raw = False
        elif token == TOKEN_DATA and not in_raw and "{" in value:
            yield from _split_data(lineno, value)
            continue
        yield lineno, token, value


def _split_data(lineno: int, text: str) -> Iterator[tuple[int, str, str]]:
    pos = 0
    for match in _PLACEHOLDER_RE.finditer(text):
        before = text[pos : match.start()]
        if before:
            yield lineno, TOKEN_DATA, before
            lineno += before.count("\n")
        yield lineno, "variable_begin", "{{"
        yield lineno, "string", '"' + match[1] + '"'
        yield lineno, "operator", "|"
        yield lineno, "name", PLACEHOLDER
        yield lineno, "variable_end", "}}"
        pos = match.end()
    rest = text[pos:]
    if rest:
        yield lineno, TOKEN_DATA, rest


class _PlaceholderLexer(Lexer):
    def wrap(
        self, stream: Iterable[tuple[int, str, str]], name: str | None = None, filename: str | None = None
    ) -> Iterator[Any]:
        return super().wrap(_inject_placeholders(stream), name, filename)


# --------------------------------------------------------------------------------------------------
# compile-time scan and instrumentation

_MANGLED = re.compile(r"_[A-Za-z0-9]+__\w")
_INTERNAL_NAMES = frozenset({"self"})


def _dangerous(name: Any) -> bool:
    return isinstance(name, str) and (name.startswith("__") or _MANGLED.match(name) is not None)


def _refuse(message: str, node: nodes.Node) -> NoReturn:
    raise TemplateSecurityError(message, getattr(node, "lineno", None))


def _scan(tree: nodes.Template) -> None:
    watched = (
        nodes.Getattr, nodes.Getitem, nodes.NSRef, nodes.Name, nodes.Filter, nodes.Test,
        nodes.Keyword, nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport,
    )  # fmt: skip
    for node in tree.find_all(watched):
        if isinstance(node, nodes.Extends | nodes.Include | nodes.Import | nodes.FromImport):
            _refuse("extends/include/import are not available in prompt templates", node)
        elif isinstance(node, nodes.Getattr | nodes.NSRef):
            if _dangerous(node.attr) or (isinstance(node, nodes.NSRef) and node.attr.startswith("_")):
                _refuse(f"access to attribute {node.attr!r} is not allowed", node)
        elif isinstance(node, nodes.Getitem):
            if isinstance(node.arg, nodes.Const) and _dangerous(node.arg.value):
                _refuse(f"access to item {node.arg.value!r} is not allowed", node)
        elif isinstance(node, nodes.Name):
            if node.name in _INTERNAL_NAMES or _dangerous(node.name):
                _refuse(f"the name {node.name!r} is not available in prompt templates", node)
        elif isinstance(node, nodes.Keyword):
            if _dangerous(node.key):
                _refuse(f"the keyword argument {node.key!r} is not allowed", node)
        elif isinstance(node, nodes.Filter | nodes.Test):
            if node.name != PLACEHOLDER and _dangerous(node.name):
                _refuse(f"the filter or test {node.name!r} is not available", node)
            for arg in [*node.args, *(kw.value for kw in node.kwargs)]:
                if isinstance(arg, nodes.Const) and _dangerous(arg.value):
                    _refuse(f"the argument {arg.value!r} is not allowed", node)


def _guard(node: nodes.Node | None, name: str, lineno: int, *args: Any) -> nodes.Filter:
    return nodes.Filter(node, name, [nodes.Const(a) for a in args], [], None, None, lineno=lineno)


# Scopes whose output is collected in a buffer (and so never passes the top-level output check):
# their outputs are counted against max_buffered_chars. Top-level loops stream straight to the caller.
_BUFFERED_SCOPES = (nodes.Macro, nodes.CallBlock, nodes.AssignBlock, nodes.FilterBlock)


def _instrument_output(out: nodes.Output) -> list[nodes.Node]:
    static = sum(len(n.data) for n in out.nodes if isinstance(n, nodes.TemplateData))
    rebuilt: list[nodes.Expr] = []
    pending = static
    for child in out.nodes:
        if isinstance(child, nodes.TemplateData):
            rebuilt.append(child)
        else:
            rebuilt.append(_guard(child, OUT_GUARD, child.lineno, pending))
            pending = 0
    if pending:
        return [nodes.ExprStmt(_guard(nodes.Const(static), EMIT_GUARD, out.lineno), lineno=out.lineno), out]
    out.nodes = rebuilt
    return [out]


def _instrument(node: nodes.Node, buffered: bool) -> nodes.Node:
    inner = (
        buffered
        or isinstance(node, _BUFFERED_SCOPES)
        or (isinstance(node, nodes.For) and bool(node.recursive))
    )
    for field in node.fields:
        value = getattr(node, field)
        if isinstance(value, nodes.Node):
            setattr(node, field, _instrument(value, inner))
        elif isinstance(value, list):
            rebuilt: list[Any] = []
            for item in value:
                if isinstance(item, nodes.Output):
                    _instrument(item, inner)
                    rebuilt.extend(_instrument_output(item) if inner else [item])
                elif isinstance(item, nodes.Node):
                    rebuilt.append(_instrument(item, inner))
                else:
                    rebuilt.append(item)
            setattr(node, field, rebuilt)
    if isinstance(node, nodes.For):
        node.iter = _guard(node.iter, ITER_GUARD, node.lineno)
    elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Slice):
        # compiled as a plain subscript (no getitem call): a slice copies up to max_value_size items
        node.node = _guard(node.node, TIME_GUARD, node.lineno)
    elif isinstance(node, nodes.Compare):
        # ==, <, in… are not intercepted by the sandbox; on two values of max_value_size items one takes ms
        node.expr = _guard(node.expr, TIME_GUARD, node.lineno)
    elif isinstance(node, nodes.AssignBlock | nodes.FilterBlock):
        node.filter = _guard(node.filter, SIZE_GUARD, node.lineno)
    elif isinstance(node, nodes.List | nodes.Dict | nodes.Concat) or (
        isinstance(node, nodes.Tuple) and node.ctx == "load"
    ):
        return _guard(node, SIZE_GUARD, node.lineno)
    return node


# --------------------------------------------------------------------------------------------------
# runtime pre-checks

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_DIGITS = re.compile(r"\d+")
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


def _check_percent_format(fmt: str, limits: RenderLimits) -> None:
    for match in _PERCENT_SPEC.finditer(fmt):
        for group in match.groups():
            if group == "*":
                raise LimitExceededError("max_value_size", "'*' widths are not supported in % formatting")
            if group is not None:
                _check_int(int(group), limits.max_value_size, "format width")


def _check_brace_format(fmt: str, limits: RenderLimits) -> None:
    for _literal, _field, spec, _conversion in string.Formatter().parse(fmt):
        if not spec:
            continue
        if "{" in spec:
            raise SecurityError("nested replacement fields in format specs are not allowed")
        for digits in _DIGITS.findall(spec):
            _check_int(int(digits), limits.max_value_size, "format width")


def _check_str_method(owner: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], limits: RenderLimits) -> None:  # fmt: skip
    cap = limits.max_value_size
    if method in _WIDTH_METHODS:
        for arg in (*args, *kwargs.values()):
            _check_int(arg, cap, "width")
    elif method == "expandtabs":
        for arg in (*args, *kwargs.values()):
            if isinstance(arg, int) and len(owner) * max(arg, 1) > cap:
                raise LimitExceededError("max_value_size", "expandtabs result would be too large")
    elif method == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        _check_replace(owner, args[0], args[1], cap)


def _check_replace(text: str, old: str, new: str, cap: int) -> None:
    if len(new) <= len(old):
        return
    count = text.count(old) if old else len(text) + 1
    if len(text) + count * (len(new) - len(old)) > cap:
        raise LimitExceededError("max_value_size", f"replace would produce more than {cap} characters")


def _check_join(sep: str, items: Any, limits: RenderLimits) -> tuple[Any, ...]:
    seq = items if isinstance(items, list | tuple) else tuple(items)
    cap = limits.max_value_size
    if value_weight(seq, cap) + len(sep) * len(seq) > cap:
        raise LimitExceededError("max_value_size", f"join would produce more than {cap} characters")
    return tuple(seq)


def _check_binop(operator: str, left: Any, right: Any, limits: RenderLimits) -> None:
    """Refuse ``*``, ``**``, ``%``, ``+`` whose result would be too large, before computing it."""
    cap = limits.max_value_size
    ints = isinstance(left, int) and isinstance(right, int)
    if operator == "*" and ints:
        too_big = left.bit_length() + right.bit_length() > _MAX_INT_BITS
    elif operator == "*":
        seq, times = (left, right) if isinstance(right, int) else (right, left)
        too_big = (
            isinstance(times, int)
            and isinstance(seq, str | list | tuple)
            and times > 0
            and value_weight(seq, cap) * times > cap
        )
    elif operator == "**":
        too_big = ints and right > 0 and abs(left) > 1 and left.bit_length() * right > _MAX_INT_BITS
    elif operator == "%":
        if isinstance(left, str):
            _check_percent_format(left, limits)
        too_big = False
    elif operator == "+":
        sequences = isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple)
        too_big = sequences and value_weight(left, cap) + value_weight(right, cap) > cap
    else:
        too_big = False
    if too_big:
        raise LimitExceededError("max_value_size", f"the result of {operator!r} would be too large")


class _SafeNamespace(Namespace):
    """``namespace()`` whose stored values are size-checked."""

    def __setitem__(self, name: str, value: Any) -> None:
        if not isinstance(name, str) or name.startswith("_"):
            raise SecurityError(f"namespace attribute {name!r} is not allowed")
        _check_size(value, _limits_from(None), "a namespace value")
        super().__setitem__(name, value)


def _make_range(limits: RenderLimits) -> Callable[..., range]:
    def safe_range(*args: int) -> range:
        rng = range(*args)
        if len(rng) > limits.max_range:
            raise LimitExceededError(
                "max_range", f"range() of {len(rng)} items exceeds the limit of {limits.max_range}"
            )
        return rng

    return safe_range


Args = tuple[Any, ...]
Kwargs = dict[str, Any]
Check = Callable[[Args, Kwargs], "Args | None"]


def _wrap_filter(func: Callable[..., Any], check: Check | None, cap: int) -> Callable[..., Any]:
    """Every filter call: the deadline before it, ``check`` on the value-first arguments before it, and the size
    of a text result after it (keeps Jinja's pass_* marker). Filters are called directly by the compiled
    template, not through :meth:`PromptEnvironment.call`, so without this a template made of filters
    (``{% set y = x|tojson %}`` × n) never looked at the clock. Kept lean: it runs on every filter call."""
    skip = 0 if _PassArg.from_obj(func) is None else 1
    monotonic = time.monotonic

    def checked(*args: Any, **kwargs: Any) -> Any:
        state = render_state.get()
        if state is not None and monotonic() > state.deadline:
            state.check_time()
        if check is not None:
            replaced = check(args[skip:], kwargs)
            if replaced is not None:
                args = (*args[:skip], *replaced)
        result = func(*args, **kwargs)
        if type(result) is str and len(result) > cap:
            raise LimitExceededError("max_value_size", f"a filter returned more than {cap} characters")
        return result

    return functools.wraps(func)(checked)


def _filter_checks(limits: RenderLimits) -> dict[str, Check]:
    """The size pre-checks of Jinja's built-in filters whose output can grow without bound, by filter name."""
    cap = limits.max_value_size

    # every check gets the filter's arguments value-first (without a context/environment argument)
    # and may return replacement arguments
    def size_of_value(args: Args, _kwargs: Kwargs) -> Args | None:
        if args:
            _check_size(args[0], limits, "the filtered value")
        return None

    def replace_check(args: Args, kwargs: Kwargs) -> Args | None:
        # do_replace(s, old, new, count=None)
        text = args[0] if args else kwargs.get("s")
        old = args[1] if len(args) > 1 else kwargs.get("old")
        new = args[2] if len(args) > 2 else kwargs.get("new")
        if isinstance(old, str) and isinstance(new, str):
            _check_replace(str(text), old, new, cap)
        return None

    def join_check(args: Args, kwargs: Kwargs) -> Args | None:
        # do_join(value, d="", attribute=None): materialise once, then measure
        value = args[0] if args else kwargs.pop("value", ())
        sep = args[1] if len(args) > 1 else kwargs.get("d", "")
        items = _check_join(str(sep), list(value) if isinstance(value, str) else value, limits)
        return (items, *args[1:])

    def width_check(position: int, keyword: str) -> Check:
        def check(args: Args, kwargs: Kwargs) -> Args | None:
            width = args[position] if len(args) > position else kwargs.get(keyword)
            _check_int(width, cap, keyword)
            if isinstance(width, str):
                _check_size(width, limits, keyword)
            return None

        return check

    def format_check(args: Args, _kwargs: Kwargs) -> Args | None:
        if args and isinstance(args[0], str):
            _check_percent_format(args[0], limits)
        return None

    def wordwrap_check(args: Args, kwargs: Kwargs) -> Args | None:
        # do_wordwrap(s, width=79, break_long_words=True, wrapstring=None, ...)
        text = args[0] if args else ""
        width = args[1] if len(args) > 1 else kwargs.get("width", 79)
        wrapstring = args[3] if len(args) > 3 else kwargs.get("wrapstring")
        if (
            isinstance(width, int)
            and isinstance(text, str)
            and isinstance(wrapstring, str)
            and len(text) // max(width, 1) * len(wrapstring) > cap
        ):
            raise LimitExceededError("max_value_size", "wordwrap result would be too large")
        return None

    return {
        "replace": replace_check,
        "join": join_check,
        "center": width_check(1, "width"),
        "indent": width_check(1, "width"),
        "batch": width_check(1, "linecount"),
        "slice": width_check(1, "slices"),
        "format": format_check,
        "wordwrap": wordwrap_check,
        "string": size_of_value,
        "pprint": size_of_value,
        "urlencode": size_of_value,
        "xmlattr": size_of_value,
        "list": size_of_value,
    }


# --------------------------------------------------------------------------------------------------


_DICT_ATTRIBUTES = frozenset(dir(dict))
_LOOP_ATTRIBUTES = frozenset(
    {"index", "index0", "revindex", "revindex0", "first", "last", "length", "depth", "depth0",
     "previtem", "nextitem", "cycle", "changed"}
)  # fmt: skip


class PromptEnvironment(ImmutableSandboxedEnvironment):
    """Immutable sandbox + StrictUndefined + the guards above. One per RenderLimits."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, limits: RenderLimits) -> None:
        super().__init__(
            undefined=_StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            cache_size=0,
            auto_reload=False,
        )
        self.limits = limits
        self._lexer = _PlaceholderLexer(self)
        self.globals.clear()
        self.globals.update(
            range=_make_range(limits), dict=dict, namespace=_SafeNamespace, cycler=Cycler, joiner=Joiner
        )
        self._install_filters()

    @property
    def lexer(self) -> Lexer:
        return self._lexer

    # -- filters -------------------------------------------------------------------------------
    def _install_filters(self) -> None:
        f = self.filters
        checks = _filter_checks(self.limits)
        f.update(
            translit=_filters.translit,
            slug=_filters.slug,
            pick=_filters.pick,
            tojson=_filters.tojson,
        )
        checks["tojson"] = checks["string"]  # the value-size check
        cap = self.limits.max_value_size
        for name in list(f):
            f[name] = _wrap_filter(f[name], checks.get(name), cap)
        f[ITER_GUARD] = _guard_iter
        f[SIZE_GUARD] = _guard_size
        f[OUT_GUARD] = _guard_out
        f[EMIT_GUARD] = _guard_emit
        f[PLACEHOLDER] = _placeholder
        f[TIME_GUARD] = _guard_time

    # -- compile time ----------------------------------------------------------------------------
    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        _scan(tree)
        instrumented = _instrument(tree, buffered=False)
        assert isinstance(instrumented, nodes.Template)
        instrumented.set_environment(self)
        return instrumented

    # -- run time --------------------------------------------------------------------------------
    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, Context | types.ModuleType | types.FrameType | types.CodeType):
            return False
        return super().is_safe_attribute(obj, attr, value)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        raise SecurityError(
            f"access to attribute {attribute!r} of a {type(obj).__name__!r} object is not allowed"
        )

    def getattr(self, obj: Any, attribute: str) -> Any:
        kind = type(obj)
        # fast paths with the same result as the generic lookup: plain JSON objects and loop state
        if kind is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        if kind is LoopContext and attribute in _LOOP_ATTRIBUTES:
            return getattr(obj, attribute)
        if isinstance(attribute, str) and attribute.startswith("__"):
            raise SecurityError(f"access to attribute {attribute!r} is not allowed")
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(argument, str) and _dangerous(argument) and not isinstance(obj, dict):
            raise SecurityError(f"access to item {argument!r} is not allowed")
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        fmt = value.__self__
        limits = self.limits

        def checked(*args: Any, **kwargs: Any) -> str:
            _check_brace_format(fmt, limits)
            for arg in (*args, *kwargs.values()):
                if isinstance(arg, dict):
                    for key in arg:
                        if _dangerous(key):
                            raise SecurityError(f"format key {key!r} is not allowed")
            result = wrapper(*args, **kwargs)
            _check_size(result, limits, "a formatted string")
            return result

        return checked

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_deadline()
        _check_binop(operator, left, right, self.limits)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_deadline()
        limits = __self.limits
        if isinstance(__obj, types.BuiltinMethodType) and isinstance(__obj.__self__, str):
            owner: str = __obj.__self__
            if __obj.__name__ == "join" and args:
                args = (_check_join(owner, args[0], limits), *args[1:])
            else:
                _check_str_method(owner, __obj.__name__, args, kwargs, limits)
        result = super().call(__context, __obj, *args, **kwargs)
        if type(result) is str and len(result) > limits.max_value_size:
            raise LimitExceededError(
                "max_value_size", f"a call returned more than {limits.max_value_size} characters"
            )
        return result
